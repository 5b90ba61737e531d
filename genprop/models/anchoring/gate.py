"""Source anchor: the SCE says, per latent position, how much of the source video G's denoiser is anchored on.

A backbone preconditioned around an anchor ``a`` (the procedural backbone: the first frame repeated, see
``WanBackboneConfig.first_frame_anchor``) models only the residual ``x0 - a``. GenProp's target equals the
SCE's source video everywhere outside the edited region (Sec. 3.4: every synthetic pair differs from its source
only inside its mask), so the natural anchor for GenProp is the source itself there. This gate moves G's anchor
towards the source, ``a' = a + g * (s - a)``, with ``g`` read per token by two zero-initialised linear heads: one
on the SCE's last hidden state, one on the first frame's edit footprint ``|e_1 - s_1|`` (G's edited first frame
against the source's, per latent channel, the same for every frame: where the user's edit is, exactly, at t = 1).
At initialisation ``g = 0`` and GenProp equals the frozen backbone exactly; a trained gate keeps the source where
the content is unchanged and leaves the edited region to G. See docs/design-decisions.md, "Procedural extensions:
anchoring".

With a flow anchor ``w`` (``flow.py``: the edit carried by the source's optical flow) the gate
has a second channel applied after the first, ``a' = a_s + g_w (w - a_s)`` with ``a_s = a + g_s (s - a)`` (nested,
so the two never add up past either anchor: summed, they reach 1.26 inside the edit), and the
footprint also reads ``|w_t - s_t|`` per frame: where the warped edit lies on frame t, which moves with the object
(the first-frame footprint does not).
Both channels start at zero; the two-channel gate saturates (``tanh``: linear at zero, so it still starts as the
backbone), because "the warp, wherever it differs from the source" is a threshold of the footprint's size, which
varies with the edit's colours and which no linear head gives as one value. See docs/design-decisions.md,
"Procedural extensions: anchoring".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genprop.models.zero_init import zero_module


class SourceAnchorGate(nn.Module):
    """Zero-initialised per-token heads -> gate (B, T_lat, K, h, w), K = 1 (source) or 2 (source, flow anchor).

    Args:
        width (int): the SCE's hidden width D.
        patch_volume (int): latent positions per token (p_t p_h p_w); one gate value each, shared by the channels.
        latent_channels (int): C, the latent channels (the footprint has C values per latent position).
        flow (bool, default False): add the flow-anchor channel (and its footprint ``|w - s|``).
    """

    def __init__(self, width: int, patch_volume: int, latent_channels: int, flow: bool = False):
        super().__init__()
        self.channels = 2 if flow else 1
        self.head = zero_module(nn.Linear(width, patch_volume * self.channels))
        # many inputs per output: a zero-initialised map that moves the gate by O(1) within tens of steps
        self.footprint = zero_module(nn.Linear(patch_volume * latent_channels * self.channels,
                                               patch_volume * self.channels, bias=False))

    def forward(self, backbone, hidden: torch.Tensor, ctx, cond: dict, source: torch.Tensor,
                flow_anchor: torch.Tensor | None = None) -> torch.Tensor:
        """The gate on the latent grid.

        Args:
            backbone: the Wan adapter (``tokens_to_grid``, ``grid_to_tokens``, ``first_frame_latents``).
            hidden (Tensor): (B, L, D) the SCE's last hidden state.
            ctx: the backbone context (grid and batch).
            cond (dict): G's conditioning (its first frame is the edited one).
            source (Tensor): (B, T_lat, C, h, w) the source latents.
            flow_anchor (Tensor | None): (B, T_lat, C, h, w) the flow anchor's latents (required with ``flow``).
        """
        footprint = self.footprints(backbone, cond, source, flow_anchor)
        tokens = self.head(hidden) + self.footprint(backbone.grid_to_tokens(footprint.to(hidden.dtype), ctx))
        if self.channels == 2:
            tokens = torch.tanh(tokens)
        return backbone.tokens_to_grid(tokens, ctx)

    def footprints(self, backbone, cond: dict, source: torch.Tensor,
                   flow_anchor: torch.Tensor | None = None) -> torch.Tensor:
        """The edit's footprints the gate reads: (B, T_lat, K C, h, w), ``|e_1 - s_1|`` on every frame [and
        ``|w_t - s_t|``], per latent channel (arguments as :meth:`forward`'s)."""
        first = backbone.first_frame_latents(cond, source)  # (B, 1, C, h, w)
        footprint = (first - source[:, :1]).abs().expand(-1, source.shape[1], -1, -1, -1)
        if self.channels == 2:
            if flow_anchor is None:
                raise ValueError("a flow-anchor gate needs the flow anchor (cond['flow_anchor'], see "
                                 "genprop.models.anchoring.flow.with_flow_anchor)")
            footprint = torch.cat([footprint, (flow_anchor.to(source.dtype) - source).abs()], dim=2)
        return footprint

    @staticmethod
    def anchor(gate: torch.Tensor, backbone_anchor: torch.Tensor, source: torch.Tensor,
               flow_anchor: torch.Tensor | None = None) -> torch.Tensor:
        """``a_s = a + g_s (s - a)`` [then ``a_s + g_w (w - a_s)``]: (B, T_lat, C, h, w) from the gate
        (B, T_lat, K, h, w), G's own anchor, the source latents and (K = 2) the flow anchor's latents."""
        gate = gate.to(backbone_anchor.dtype)
        out = backbone_anchor + gate[:, :, :1] * (source.to(backbone_anchor.dtype) - backbone_anchor)
        if gate.shape[2] == 2:
            out = out + gate[:, :, 1:] * (flow_anchor.to(backbone_anchor.dtype) - out)
        return out
