"""L_gate: the anchoring extension's supervision of its gate (added to the region-aware loss by
``genprop.training.anchored_objective``)."""

from __future__ import annotations

import torch

from genprop.losses import balanced_squared_error


def gate_term(gate: torch.Tensor, latent_mask: torch.Tensor, flow_target: torch.Tensor | None = None) -> torch.Tensor:
    """L_gate in fp32: the source channel ``g_s`` towards ``1 - m``, and a flow-anchor channel ``g_w`` towards
    ``flow_target``, each area-balanced (:func:`balanced_squared_error`).

    Args:
        gate (Tensor): (B, T_lat, K, h, w) the source-anchor gate (channel 0: towards the source, 1: the flow anchor).
        latent_mask (Tensor): (B, T_lat, 1, h, w) in [0, 1].
        flow_target (Tensor | None): (B, T_lat, 1, h, w) where the flow anchor is the best of the three anchors
            (:func:`flow_gate_target`); required when the gate has a flow channel.
    """
    term = balanced_squared_error(1 - gate[:, :, :1], latent_mask)
    if gate.shape[2] == 2:
        term = term + balanced_squared_error(gate[:, :, 1:], flow_target)
    return term


def flow_gate_target(x0: torch.Tensor, backbone_anchor: torch.Tensor, source: torch.Tensor, flow_anchor: torch.Tensor
                     ) -> torch.Tensor:
    """Where the flow anchor is closer to the clean target than G's anchor and the source:
    ``[|w - x0| < min(|a - x0|, |s - x0|)]`` per latent position (mean over channels), (B, T_lat, 1, h, w).

    Where the warp left the source as it was, ``w = s`` exactly and the target is 0 (either anchor serves); where
    the warp overshoots the object it is wrong and the target is 0; where the flow followed the edit it is 1, at
    full strength even on a latent position the edit covers only in part (a target scaled by the soft mask teaches
    the gate to half-trust a warp that is right at every object's boundary). Computed without gradient.

    Args:
        x0 (Tensor): (B, T_lat, C, h, w) the clean target latents.
        backbone_anchor, source, flow_anchor (Tensor): (B, T_lat, C, h, w) the three anchors a, s, w.
    """
    with torch.no_grad():
        def err(v):
            return (v.float() - x0.float()).square().mean(dim=2, keepdim=True)

        return (err(flow_anchor) < torch.minimum(err(backbone_anchor), err(source))).float()
