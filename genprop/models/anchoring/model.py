"""AnchoredGenPropModel: the paper's GenProp with G's anchor moved towards the source (and the flow-warped edit).

The procedural backbone is preconditioned around an anchor (``PreconditionedWanBackbone``: the first frame
repeated). This extension reads a zero-initialised gate from the SCE's last hidden state and the edit's
footprints (``gate.SourceAnchorGate``), moves G's anchor towards the source video where the gate is open (and,
with ``AnchoringConfig.flow``, towards the first-frame edit carried by the source's optical flow,
``flow.py``), and runs G around that anchor. It composes the paper's two stages, ``encode`` and ``decode``,
with one of its own between them; at initialisation the gate is zero and the model equals its backbone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from genprop.models.anchoring.flow import FLOW_ANCHOR_KEY, with_flow_anchor, with_flow_anchor_from_latents
from genprop.models.anchoring.gate import SourceAnchorGate
from genprop.models.backbones import WanBackbone, build_backbone
from genprop.models.backbones.interface import VideoBackbone
from genprop.models.backbones.wan_preconditioned import PreconditionedWanBackbone
from genprop.models.genprop_config import GenPropConfig
from genprop.models.genprop_model import EncodedInputs, GenPropModel, GenPropOutput
from genprop.models.unit_outputs import own
from genprop.models.zero_init import zero_module

# Parameters of the gate (``AnchoredGenPropModel.source_gate``) and of its maps into the MPD (``gate_to_mpd``,
# ``footprint_to_mpd``: zero-initialised too, with outputs that must travel O(1)) train at
# ``AnchoringConfig.gate_lr_scale`` x lr.
GATE_PREFIX = ("source_gate.", "gate_to_mpd.", "footprint_to_mpd.")


@dataclass
class AnchoredOutput(GenPropOutput):
    """``GenPropOutput`` plus the gate.

    Attributes:
        gate (Tensor | None): (B, T_lat, K, h, w) the source-anchor gate; K = 2 with ``AnchoringConfig.flow``
            (channel 0 towards the source, 1 towards the flow anchor).
    """

    gate: torch.Tensor | None = None


class AnchoredGenPropModel(GenPropModel):
    """GenProp over a preconditioned Wan backbone, with the source-anchor gate (trainable beside SCE, MPD, tasks).

    Args:
        config (GenPropConfig): the configuration (its ``anchoring`` set).
        backbone (WanBackbone | None): an already-built backbone (a plain one is anchored at zero); None builds the
            config's.

    Raises:
        ValueError: the backbone is not a Wan backbone (the gate moves its anchor).
    """

    extension = "anchoring"

    def __init__(self, config: GenPropConfig, backbone: VideoBackbone | None = None):
        bb = build_backbone(config.required_backbone) if backbone is None else backbone
        if isinstance(bb, WanBackbone) and not isinstance(bb, PreconditionedWanBackbone):
            bb = PreconditionedWanBackbone.from_backbone(bb)  # the plain parameterisation: an anchor of zero
        if not isinstance(bb, PreconditionedWanBackbone):
            raise ValueError(f"anchoring needs a Wan backbone (its anchor is what the gate moves); got {bb.kind!r}")
        super().__init__(config, bb)
        # zero-initialised: built outside the seeded block of the paper's layers without changing them
        self.source_gate = SourceAnchorGate(bb.encoder_output_channels(0)[0], bb.patch_volume,
                                            bb.latent_map.latent_channels, flow=config.anchoring.flow)
        # the gate's K values per latent position, per token, into the MPD's input width (zero: the paper's input)
        self.gate_to_mpd = (zero_module(nn.Linear(self.source_gate.channels * bb.patch_volume,
                                                  bb.encoder_output_channels(0)[0]))
                            if config.anchoring.mpd_reads_gate else None)
        # the gate's footprints per token (K C values per latent position) into the same width, zero-initialised
        self.footprint_to_mpd = (zero_module(nn.Linear(self.source_gate.channels * bb.patch_volume
                                                       * bb.latent_map.latent_channels,
                                                       bb.encoder_output_channels(0)[0], bias=False))
                                 if config.anchoring.mpd_reads_footprint else None)

    def parameter_groups(self, named: dict[str, nn.Parameter]) -> list[dict]:
        """The paper's group, and the gate's at ``gate_lr_scale`` times the learning rate."""
        gate = [p for n, p in named.items() if n.startswith(GATE_PREFIX)]
        rest = {n: p for n, p in named.items() if not n.startswith(GATE_PREFIX)}
        groups = super().parameter_groups(rest)
        return groups + ([{"params": gate, "lr_scale": self.config.anchoring.gate_lr_scale}] if gate else [])

    def source_condition(self, cond: dict, source_video: torch.Tensor, first_frame: torch.Tensor) -> dict:
        """``cond`` plus the flow anchor's latents (``cond["flow_anchor"]``) with ``AnchoringConfig.flow``."""
        return with_flow_anchor(self, cond, source_video, first_frame)

    def source_condition_from_latents(self, cond: dict, sce_latents: torch.Tensor) -> dict:
        """The same from latents (decoded with the latent map, warped, re-encoded)."""
        return with_flow_anchor_from_latents(self, cond, sce_latents)

    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict[str, torch.Tensor],
                sce_latents: torch.Tensor, task_ids: torch.Tensor, perturb_mask: torch.Tensor | None = None,
                perturb_delta: float = 0.0, num_frames: int | None = None,
                predict_mask: bool = True, share_sce_across_cfg: bool = False) -> AnchoredOutput:
        """As ``GenPropModel.forward`` (same arguments; ``cond`` from :meth:`source_condition`), G run around the
        gated anchor; the output carries the gate."""
        # 1-3. the paper's: G's input and the SCE's injections
        enc = self.encode(model_input, timestep, cond, sce_latents, task_ids, perturb_mask, perturb_delta,
                          share_sce_across_cfg)
        # a. the gate, read from the SCE and the edit's footprints
        gate, enc = self.reanchor(enc, model_input, timestep, cond, sce_latents)
        # 4-5. the paper's: G's blocks with the injections, the MPD
        out = self.decode(enc, num_frames, predict_mask)
        return AnchoredOutput(**{f.name: getattr(out, f.name) for f in dataclasses.fields(out)}, gate=own(gate))

    def reanchor(self, enc: EncodedInputs, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict,
                 sce_latents: torch.Tensor) -> tuple[torch.Tensor, EncodedInputs]:
        """The gate (B, T_lat, K, h, w), and ``enc`` with G's input and skip recomputed around
        ``a_s = a + g_s (s - a)`` [then ``a_s + g_w (w - a_s)``]."""
        bb = self.backbone
        hidden = torch.cat([enc.sce_hidden] * 2) if enc.sce_shared else enc.sce_hidden  # (B, L, D)
        flow = cond.get(FLOW_ANCHOR_KEY) if self.config.anchoring.flow else None
        gate = self.source_gate(bb, hidden.to(enc.g_hidden.dtype), enc.ctx, cond, sce_latents, flow)
        anchor = SourceAnchorGate.anchor(gate, bb.anchor(cond, model_input), sce_latents, flow)
        ctx = bb.reanchor(enc.ctx, model_input, timestep, cond, anchor)
        hint = None
        if self.gate_to_mpd is not None:
            hint = self.gate_to_mpd(bb.grid_to_tokens(gate.to(enc.g_hidden.dtype), ctx))  # (B, L, D)
        if self.footprint_to_mpd is not None:
            footprint = self.source_gate.footprints(bb, cond, sce_latents, flow)  # (B, T_lat, K C, h, w)
            hint = hint + self.footprint_to_mpd(bb.grid_to_tokens(footprint.to(enc.g_hidden.dtype), ctx))
        return gate, dataclasses.replace(enc, ctx=ctx, g_hidden=bb.embed(ctx.x_in, ctx), mpd_hint=hint)
