"""The procedural backbone's parameterisation: a Wan adapter whose denoiser works around an anchor.

With ``WanBackboneConfig.first_frame_anchor`` the denoiser models the clip's difference from an anchor ``a``
(the first frame's latents repeated over time): it sees ``r_t = x_t - (1 - sigma) a`` and its output ``v_r``
becomes ``v = v_r - a``, the same flow-matching target. With ``sigma_data`` it is also EDM-preconditioned
around the anchor: the network sees ``c_in r_t`` and predicts ``v = c_skip r_t - a + c_out N``. A real Wan2.1
folder uses neither and gets the plain ``WanBackbone``; ``build_backbone`` picks this class when either is set.
The anchored GenProp (``genprop.models.anchoring``) moves ``a`` per latent position (:meth:`reanchor`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from genprop.models.backbones.wan import WanBackbone, WanContext


@dataclass
class PreconditionedWanContext(WanContext):
    """``WanContext`` plus what turns the network's output into the prediction."""

    skip: torch.Tensor | None = None  # (B, T_lat, C, h, w) added to the output
    c_out: torch.Tensor | None = None  # (B, 1, 1, 1, 1) scales the network's output (``sigma_data``)


class PreconditionedWanBackbone(WanBackbone):
    """``WanBackbone`` with the first-frame anchor and/or EDM preconditioning (see the module docstring); with
    neither it is the plain parameterisation around an anchor of zero that :meth:`reanchor` can move."""

    @classmethod
    def from_backbone(cls, backbone: WanBackbone) -> "PreconditionedWanBackbone":
        """The same modules (shared, not copied) as a preconditioned adapter."""
        new = cls(backbone.config, backbone.transformer, backbone.latent_map, backbone.text_encoder,
                  backbone.tokenizer, backbone.image_encoder, backbone.image_processor, backbone.scheduler_config)
        if backbone.text_encoder is None:
            new.null_text_embedding = backbone.null_text_embedding
        new.gradient_checkpointing = backbone.gradient_checkpointing
        return new

    def anchor(self, cond: dict, like: torch.Tensor) -> torch.Tensor:
        """(B, T_lat, C, h, w): the anchor the denoiser models its residual from: the condition's first latent frame
        repeated over time with ``first_frame_anchor``, else zeros.

        Args:
            cond (dict): the conditioning from ``encode_condition``.
            like (Tensor): (B, T_lat, C, h, w) latents giving the shape and dtype.
        """
        if not self.config.first_frame_anchor:
            return torch.zeros_like(like)
        return self.first_frame_latents(cond, like).expand(-1, like.shape[1], -1, -1, -1)

    def precondition(self, model_input: torch.Tensor, timestep, cond: dict, anchor: torch.Tensor | None = None):
        """(network input, skip, c_out) around ``anchor`` (B, T_lat, C, h, w) (default :meth:`anchor`); sigma is
        timestep / 1000."""
        if timestep is None:
            raise ValueError("a preconditioned backbone needs the timestep")
        s_data = self.config.sigma_data
        t = torch.as_tensor(timestep, device=model_input.device, dtype=torch.float32).reshape(-1)
        sigma = (t / 1000).expand(model_input.shape[0]).view(-1, 1, 1, 1, 1)
        anchor = self.anchor(cond, model_input) if anchor is None else anchor
        r_t = model_input - (1 - sigma).to(model_input.dtype) * anchor  # noisy latents of x0 - a
        if s_data is None:
            return r_t, -anchor, None
        var = (1 - sigma) ** 2 * s_data ** 2 + sigma ** 2  # Var(r_t)
        cov = sigma - (1 - sigma) * s_data ** 2  # Cov(eps - r, r_t)
        c_in, c_skip = var.rsqrt(), cov / var
        c_out = (1 + s_data ** 2 - cov ** 2 / var).clamp_min(1e-8).sqrt()
        dt = model_input.dtype
        return c_in.to(dt) * r_t, c_skip.to(dt) * r_t - anchor, c_out.to(dt)

    def prepare(self, model_input: torch.Tensor, timestep, cond: dict) -> PreconditionedWanContext:
        """``WanBackbone.prepare`` on the preconditioned latents, with the output's skip and scale."""
        x, skip, c_out = self.precondition(model_input, timestep, cond)
        ctx = super().prepare(x, timestep, cond)
        return PreconditionedWanContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)},
                                        skip=skip, c_out=c_out)

    def reanchor(self, ctx: PreconditionedWanContext, model_input: torch.Tensor, timestep, cond: dict,
                 anchor: torch.Tensor) -> PreconditionedWanContext:
        """``ctx`` with G's input and output skip recomputed around another anchor.

        Args:
            ctx (PreconditionedWanContext): from :meth:`prepare` on the same arguments.
            model_input (Tensor): (B, T_lat, C, h, w) the noisy latents.
            timestep: as for :meth:`prepare`.
            cond (dict): the conditioning.
            anchor (Tensor): (B, T_lat, C, h, w) the new anchor.
        """
        x, skip, c_out = self.precondition(model_input, timestep, cond, anchor)
        return dataclasses.replace(ctx, x_in=self.network_input(x, cond), skip=skip, c_out=c_out)

    def sce_input(self, model_input: torch.Tensor, sce_latents: torch.Tensor, cond: dict,
                  timestep=None) -> torch.Tensor:
        """``WanBackbone.sce_input`` with the noisy latents anchored and scaled as G's (``timestep`` required)."""
        return super().sce_input(self.precondition(model_input, timestep, cond)[0], sce_latents, cond, timestep)

    def trunk(self, ctx: PreconditionedWanContext, h0: torch.Tensor, injections: list | None = None):
        """``WanBackbone.trunk``, its output turned into the prediction: ``v = c_out N + skip``."""
        out, penultimate = super().trunk(ctx, h0, injections)
        if ctx.c_out is not None:
            out = ctx.c_out.to(out.dtype) * out
        if ctx.skip is not None:
            out = out + ctx.skip.to(out.dtype)
        return out, penultimate
