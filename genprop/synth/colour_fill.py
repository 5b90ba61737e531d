"""Colour fill: the object painted one solid colour in every frame (tracking pairs)."""

from __future__ import annotations

import numpy as np

from genprop.synth.pair import TRACK_PROMPT, SyntheticPair
from genprop.tasks import Task

# How far an effect pixel (the object's shadow or reflection) moves towards the paint: a reflection shows the
# painted object at its opacity, which the procedural world draws between 0.4 and 0.6 at the floor line.
EFFECT_PAINT_ALPHA = 0.5


def colour_fill(video: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], object_id: int = 0,
                effects: np.ndarray | None = None, effect_alpha: float = EFFECT_PAINT_ALPHA) -> SyntheticPair:
    """Paint the object ``colour`` in every frame; routed as the paper's colour-fill note says.

    Here the *original* video goes to the SCE and G gets the painted first frame, so the target is the
    painted video (the video whose first frame G receives).

    Args:
        video (np.ndarray): (T, H, W, 3) uint8, the source clip V.
        mask (np.ndarray): (T, H, W) bool, the object.
        colour (tuple[int, int, int]): RGB in 0..255.
        object_id (int, default 0): recorded only.
        effects (np.ndarray | None, default None): (T, H, W) bool, the object's shadow and reflection where the
            dataset annotates them: they take the paint at :data:`EFFECT_PAINT_ALPHA` (a tint, as a reflection
            of the painted object would) and join the pair's mask, so the pair tracks the object with its effects.
        effect_alpha (float, default :data:`EFFECT_PAINT_ALPHA`): how far an effect pixel moves towards the paint
            (0: unchanged, as a shadow under a painted object stays; 1: painted).

    Returns:
        SyntheticPair: SCE input V, G's first frame painted v1, target painted V, mask = painted region,
        prompt "track colored regions".
    """
    if mask.shape != video.shape[:3]:
        raise ValueError(f"mask {mask.shape} must match video {video.shape[:3]}")
    painted = video.copy()
    paint = np.asarray(colour, dtype=np.float32)
    region = mask.copy()
    if not 0.0 <= effect_alpha <= 1.0:
        raise ValueError(f"effect_alpha must be in [0, 1], got {effect_alpha}")
    if effects is not None:
        if effects.shape != mask.shape:
            raise ValueError(f"effects {effects.shape} must match mask {mask.shape}")
        fx = effects & ~mask
        tinted = video[fx].astype(np.float32) * (1 - effect_alpha) + paint * effect_alpha
        painted[fx] = np.clip(np.rint(tinted), 0, 255).astype(np.uint8)
        region |= fx
    painted[mask] = np.asarray(colour, dtype=np.uint8)
    return SyntheticPair(task=Task.COLOUR_FILL, sce_video=video.copy(), target_video=painted, mask=region,
                         prompt=TRACK_PROMPT, object_id=int(object_id),
                         info={"colour": [int(c) for c in colour], "effects": effects is not None,
                               "effect_alpha": float(effect_alpha)})
