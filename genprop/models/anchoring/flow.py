"""Flow anchor: the first-frame edit carried through the source video by optical flow, as latents G can anchor on.

The source-anchor gate (``gate.py``) lets G keep the source wherever the content is unchanged; inside the edited
region G's own anchor is the edited first frame repeated over time, which stays where the edit was on frame 1
while the object moves (a source-anchored run's painted region stays put: IoU 0.6 on frame 2, 0.1 on frame 9,
docs/runs/log.md). With ``AnchoringConfig.flow`` the gate gets a second channel that moves
the anchor towards the flow-warped edit (``genprop.baselines.propagate_flow_warp``: the edit layer carried by
Farnebäck flow of the source, the source everywhere else), so the edit's region moves with the source's
motion from the start and G learns the correction (occlusions, effects, flow errors), not the motion itself.
The warp is a pure function of the source video and the edited first frame, the two inputs the user gives,
so training and propagation compute it the same way; it is kept in G's conditioning as ``cond["flow_anchor"]``
(latents, like the condition latents), so classifier-free guidance's two halves share it.
See docs/design-decisions.md, "Procedural extensions: anchoring".
"""

from __future__ import annotations

import numpy as np
import torch

FLOW_ANCHOR_KEY = "flow_anchor"


def _uses_flow(model) -> bool:
    return model.config.anchoring is not None and model.config.anchoring.flow


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def flow_warped_edit(source: torch.Tensor, first_frame: torch.Tensor) -> torch.Tensor:
    """The flow-warp baseline's video for a batch: (B, T, 3, H, W) in [-1, 1].

    Args:
        source (Tensor): (B, T, 3, H, W) in [-1, 1], the source video.
        first_frame (Tensor): (B, 3, H, W) in [-1, 1], the edited first frame.
    """
    from genprop.baselines.flow_warp import propagate_flow_warp

    src, first = _to_uint8(source), _to_uint8(first_frame)
    frames = np.stack([propagate_flow_warp(s, f)["frames"] for s, f in zip(src, first)])  # (B, T, H, W, 3)
    out = torch.from_numpy(frames).to(source.device).movedim(-1, -3).float() / 127.5 - 1
    return out.to(source.dtype)


def with_flow_anchor(model, cond: dict, source: torch.Tensor, first_frame: torch.Tensor) -> dict:
    """``cond`` plus the flow anchor's latents when ``model`` uses one (else ``cond`` itself), from pixels.

    Args:
        model (AnchoredGenPropModel): the model (``config.anchoring.flow``, its backbone's latent map).
        cond (dict): G's conditioning from ``backbone.encode_condition``.
        source (Tensor): (B, T, 3, H, W) in [-1, 1], the source video as the SCE gets it (padded frames included).
        first_frame (Tensor): (B, 3, H, W) in [-1, 1], G's (edited) first frame.
    """
    if not _uses_flow(model):
        return cond
    warped = flow_warped_edit(source, first_frame)
    return {**cond, FLOW_ANCHOR_KEY: model.backbone.encode_video(warped).to(source.dtype)}


def with_flow_anchor_from_latents(model, cond: dict, sce_latents: torch.Tensor) -> dict:
    """``cond`` plus the flow anchor's latents, from latents (a training batch holds latents only).

    The source and G's first frame are decoded with the backbone's latent map (exact for the procedural
    backbone's pixel-unshuffle map; a VAE's reconstruction otherwise, which is what the model sees anyway).

    Args:
        model (AnchoredGenPropModel): the model.
        cond (dict): G's conditioning (its first latent frame is G's first frame).
        sce_latents (Tensor): (B, T_lat, C, h, w) the source latents (all their frames are decoded and re-encoded,
            so the anchor has their shape).
    """
    if not _uses_flow(model) or FLOW_ANCHOR_KEY in cond:
        return cond
    bb = model.backbone
    with torch.no_grad():
        source = bb.decode_latents(sce_latents.float())  # (B, T, 3, H, W)
        first = bb.decode_latents(bb.first_frame_latents(cond, sce_latents).float(), 1)[:, 0]
        return with_flow_anchor(model, cond, source, first)
