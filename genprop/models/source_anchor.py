"""Source anchor: the SCE says, per latent position, how much of the source video G's denoiser is anchored on.

A backbone preconditioned around an anchor ``a`` (the procedural backbone: the first frame repeated, see
``WanBackboneConfig.first_frame_anchor``) models only the residual ``x0 - a``. GenProp's target equals the
SCE's source video everywhere outside the edited region (Sec. 3.4: every synthetic pair differs from its source
only inside its mask), so the natural anchor for GenProp is the source itself there. This gate moves G's anchor
towards the source, ``a' = a + g * (s - a)``, with ``g`` read by a zero-initialised linear head from the SCE's
last hidden state: at initialisation ``g = 0`` and GenProp equals the frozen backbone exactly; a trained gate
keeps the source where the SCE finds it unchanged and leaves the edited region to G.
See docs/design-decisions.md, "Source anchor".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genprop.models.zero_init import zero_module


class SourceAnchorGate(nn.Module):
    """Zero-initialised per-token head: SCE hidden tokens (B, L, D) -> gate (B, T_lat, 1, h, w).

    Args:
        width (int): the SCE's hidden width D.
        patch_volume (int): latent positions per token (p_t p_h p_w); one gate value each, shared by the channels.
    """

    def __init__(self, width: int, patch_volume: int):
        super().__init__()
        self.head = zero_module(nn.Linear(width, patch_volume))

    def forward(self, backbone, hidden: torch.Tensor, ctx) -> torch.Tensor:
        """The gate on the latent grid.

        Args:
            backbone: the Wan adapter (``tokens_to_grid``).
            hidden (Tensor): (B, L, D) the SCE's last hidden state.
            ctx: the backbone context (grid and batch).
        """
        return backbone.tokens_to_grid(self.head(hidden), ctx)

    @staticmethod
    def anchor(gate: torch.Tensor, backbone_anchor: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """``a + g (s - a)``: (B, T_lat, C, h, w) from the gate (B, T_lat, 1, h, w), G's own anchor and the
        source latents."""
        gate = gate.to(backbone_anchor.dtype)
        return backbone_anchor + gate * (source.to(backbone_anchor.dtype) - backbone_anchor)
