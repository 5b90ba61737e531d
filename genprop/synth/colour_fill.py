"""Colour fill: the object painted one solid colour in every frame (tracking pairs)."""

from __future__ import annotations

import numpy as np

from genprop.synth.pair import TASK_COLOUR_FILL, TRACK_PROMPT, SyntheticPair


def colour_fill(video: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], object_id: int = 0
                ) -> SyntheticPair:
    """Paint the object ``colour`` in every frame; routed as the paper's colour-fill note says.

    Here the *original* video goes to the SCE and G gets the painted first frame, so the target is the
    painted video (the video whose first frame G receives).

    Args:
        video (np.ndarray): (T, H, W, 3) uint8, the source clip V.
        mask (np.ndarray): (T, H, W) bool, the object.
        colour (tuple[int, int, int]): RGB in 0..255.
        object_id (int, default 0): recorded only.

    Returns:
        SyntheticPair: SCE input V, G's first frame painted v1, target painted V, mask = painted region,
        prompt "track colored regions".
    """
    if mask.shape != video.shape[:3]:
        raise ValueError(f"mask {mask.shape} must match video {video.shape[:3]}")
    painted = video.copy()
    painted[mask] = np.asarray(colour, dtype=np.uint8)
    return SyntheticPair(task=TASK_COLOUR_FILL, sce_video=video.copy(), target_video=painted, mask=mask.copy(),
                         prompt=TRACK_PROMPT, object_id=int(object_id), info={"colour": [int(c) for c in colour]})
