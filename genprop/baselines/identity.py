"""Identity baseline: the original video, unchanged (the floor every method must beat on edits)."""

from __future__ import annotations

import numpy as np


def propagate_identity(original: np.ndarray, edited_first_frame: np.ndarray) -> dict:
    """Return the original video as the "propagation".

    Args:
        original (np.ndarray): (T, H, W, 3) uint8.
        edited_first_frame (np.ndarray): (H, W, 3) uint8 (unused).

    Returns:
        {"frames": (T, H, W, 3) uint8, "mask": None}.
    """
    return {"frames": original.copy(), "mask": None}
