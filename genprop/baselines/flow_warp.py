"""Flow-warp baseline: the first-frame edit carried through the video by dense optical flow composed to frame 1.

The edit layer is the edited first frame where it differs from the original (a soft alpha from
the difference mask, feathered by one pixel); flow is Farnebäck on the original frames; outside the
warped alpha every pixel is the original's, so unedited content is exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from genprop.baselines.flow import propagate_layer
from genprop.propagation.tracking import edit_region


def propagate_flow_warp(original: np.ndarray, edited_first_frame: np.ndarray) -> dict:
    """Warp the first-frame edit into every frame.

    Args:
        original (np.ndarray): (T, H, W, 3) uint8.
        edited_first_frame (np.ndarray): (H, W, 3) uint8.

    Returns:
        {"frames": (T, H, W, 3) uint8, "mask": (T, H, W) bool, the warped edit region}.
    """
    region = edit_region(original[0], edited_first_frame)
    alpha = cv2.GaussianBlur(region.astype(np.float32), (3, 3), 0) if region.any() else region.astype(np.float32)
    alpha = np.maximum(alpha, region)  # feather outwards only: the edit itself stays opaque
    layers, alphas = propagate_layer(original, edited_first_frame.astype(np.float32), alpha)
    a = alphas[..., None]
    frames = (a * layers + (1 - a) * original.astype(np.float32)).round().clip(0, 255).astype(np.uint8)
    frames[0] = edited_first_frame
    return {"frames": frames, "mask": alphas >= 0.5}
