"""Mask tracking + per-frame inpainting: the classical analogue of SAM 2 + ProPainter.

1. Track: the region the first-frame edit touches (its difference mask) is carried through the
   video by Farnebäck flow composed to frame 1 (SAM 2's role), then dilated a little to cover edges.
2. Inpaint: every frame's tracked region is filled from its surroundings with ``cv2.inpaint``
   (Telea) (ProPainter's role), which removes what was there.
3. Composite: for edits other than removal, the edited content of frame 1 inside the region is
   pasted, shifted rigidly with the tracked region's centroid (no warping of the content).
"""

from __future__ import annotations

import cv2
import numpy as np

from genprop.baselines.flow import propagate_layer
from genprop.propagation.tracking import edit_region

INPAINT_RADIUS = 3
DILATE = 2


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def propagate_track_inpaint(original: np.ndarray, edited_first_frame: np.ndarray, task: str = "remove") -> dict:
    """Track the edited region, inpaint it in each frame, and (except for removal) paste the edit.

    Args:
        original (np.ndarray): (T, H, W, 3) uint8.
        edited_first_frame (np.ndarray): (H, W, 3) uint8.
        task (str, default "remove"): "remove" inpaints only; anything else also pastes the edited content.

    Returns:
        {"frames": (T, H, W, 3) uint8, "mask": (T, H, W) bool, the tracked region}.
    """
    region = edit_region(original[0], edited_first_frame)
    _, alphas = propagate_layer(original, np.zeros((*region.shape, 3), np.float32), region.astype(np.float32))
    tracked = alphas >= 0.5
    kernel = np.ones((2 * DILATE + 1, 2 * DILATE + 1), np.uint8)
    frames = original.copy()
    frames[0] = edited_first_frame
    ys0, xs0 = np.nonzero(region)
    for t in range(1, len(original)):
        hole = cv2.dilate(tracked[t].astype(np.uint8), kernel)
        if not hole.any():
            continue
        out = cv2.inpaint(np.ascontiguousarray(original[t]), hole, INPAINT_RADIUS, cv2.INPAINT_TELEA)
        if task != "remove" and len(ys0) and tracked[t].any():
            ys, xs = np.nonzero(tracked[t])
            dx, dy = xs.mean() - xs0.mean(), ys.mean() - ys0.mean()
            content = _shift(edited_first_frame, dx, dy)
            paste = _shift(region.astype(np.uint8) * 255, dx, dy) >= 128
            out[paste] = content[paste]
        frames[t] = out
    return {"frames": frames, "mask": tracked}
