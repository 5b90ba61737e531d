"""Copy-and-paste: an object of a donor clip, scaled and moved, pasted into the source clip (object insertion)."""

from __future__ import annotations

import cv2
import numpy as np

from genprop.synth.pair import SyntheticPair
from genprop.tasks import Task

# Placements tried before falling back to the donor's own position (a placement must keep some of the
# object inside frame 0, or G's first frame would not show what the SCE sees).
_PLACEMENT_TRIES = 8


def _warp(frames: np.ndarray, matrix: np.ndarray, interpolation: int) -> np.ndarray:
    t, h, w = frames.shape[:3]
    return np.stack([cv2.warpAffine(frames[i], matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=0) for i in range(t)])


def copy_paste(video: np.ndarray, donor_video: np.ndarray, donor_mask: np.ndarray, rng: np.random.Generator,
               scale_range: tuple[float, float] = (0.5, 1.5), object_id: int = 0) -> SyntheticPair:
    """Paste the donor's object into ``video`` at a random scale and position; routed for training.

    One similarity transform (scale ``s``, offset) is drawn per pair and applied to every donor frame, so the
    pasted object keeps following its own trajectory (and deforming as it did in the donor clip).

    Args:
        video (np.ndarray): (T, H, W, 3) uint8, the source clip V.
        donor_video (np.ndarray): (T, H, W, 3) uint8, the clip the object comes from (may be ``video``).
        donor_mask (np.ndarray): (T, H, W) bool, the donor object's mask in each frame.
        rng (np.random.Generator): all randomness (scale, position).
        scale_range (tuple[float, float], default (0.5, 1.5)): uniform range of the scale.
        object_id (int, default 0): the donor object's id (recorded only).

    Returns:
        SyntheticPair: SCE input V + pasted object, G's first frame v1, target V, mask = pasted object.
    """
    if donor_video.shape != video.shape or donor_mask.shape != video.shape[:3]:
        raise ValueError(f"donor {donor_video.shape} / mask {donor_mask.shape} must match video {video.shape}")
    t, h, w = donor_mask.shape
    ys, xs = np.nonzero(donor_mask.any(axis=0))
    if ys.size == 0:
        raise ValueError("the donor mask is empty in every frame")
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2  # centre of the object's box over the clip
    mask_u8 = donor_mask.astype(np.uint8)
    warped_mask = None
    for attempt in range(_PLACEMENT_TRIES + 1):
        s = float(rng.uniform(*scale_range))
        ty, tx = (float(rng.uniform(0, h - 1)), float(rng.uniform(0, w - 1))) if attempt < _PLACEMENT_TRIES \
            else (cy, cx)
        matrix = np.array([[s, 0, tx - s * cx], [0, s, ty - s * cy]], dtype=np.float64)
        warped_mask = _warp(mask_u8, matrix, cv2.INTER_NEAREST).astype(bool)  # (T, H, W)
        if warped_mask[0].any():
            break
    pasted = _warp(donor_video, matrix, cv2.INTER_LINEAR)  # (T, H, W, 3)
    sce = np.where(warped_mask[..., None], pasted, video)
    return SyntheticPair(task=Task.COPY_PASTE, sce_video=sce, target_video=video.copy(), mask=warped_mask,
                         prompt="", object_id=int(object_id),
                         info={"scale": round(s, 6), "offset": [round(float(matrix[1, 2]), 4),
                                                               round(float(matrix[0, 2]), 4)]})
