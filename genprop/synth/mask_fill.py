"""Mask-and-fill: the object inpainted away (OpenCV by default; any inpainter can be plugged in)."""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from genprop.synth.pair import SyntheticPair
from genprop.tasks import Task

# An inpainter fills (T, H, W) bool ``mask`` of (T, H, W, 3) uint8 ``frames`` and returns (T, H, W, 3) uint8.
# A diffusion inpainter on GPUs fits the same call (a picklable callable object loading its model once).
Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def opencv_inpainter(frames: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Frame-by-frame Telea inpainting (``cv2.inpaint``), the CPU default.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8.
        mask (np.ndarray): (T, H, W) bool, where to fill.
        radius (int, default 3): the inpainting neighbourhood in pixels.
    """
    out = frames.copy()
    for i in range(frames.shape[0]):
        if mask[i].any():
            out[i] = cv2.inpaint(frames[i], mask[i].astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return out


def mask_fill(video: np.ndarray, mask: np.ndarray, inpainter: Inpainter | None = None, dilate: int = 2,
              object_id: int = 0, effects: np.ndarray | None = None) -> SyntheticPair:
    """Inpaint the (dilated) object away; routed for training.

    Pixels outside the filled region are copied from ``video`` whatever the inpainter returns, so a
    generative inpainter cannot leak changes into the region the loss treats as unchanged.

    Args:
        video (np.ndarray): (T, H, W, 3) uint8, the source clip V.
        mask (np.ndarray): (T, H, W) bool, the object.
        inpainter (Inpainter | None, default None): None = :func:`opencv_inpainter`.
        dilate (int, default 2): grow the mask by this many pixels first (covers the anti-aliased rim).
        object_id (int, default 0): recorded only.
        effects (np.ndarray | None, default None): (T, H, W) bool, the object's shadow and reflection where the
            dataset annotates them: filled with the object (an object's removal takes its effects with it).

    Returns:
        SyntheticPair: SCE input V with the region filled, G's first frame v1, target V, mask = filled region.
    """
    if mask.shape != video.shape[:3]:
        raise ValueError(f"mask {mask.shape} must match video {video.shape[:3]}")
    if effects is not None and effects.shape != mask.shape:
        raise ValueError(f"effects {effects.shape} must match mask {mask.shape}")
    region = mask if effects is None else mask | effects
    if dilate > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        region = np.stack([cv2.dilate(r.astype(np.uint8), kernel) for r in region]).astype(bool)
    filled = (inpainter or opencv_inpainter)(video, region)
    if filled.shape != video.shape or filled.dtype != np.uint8:
        raise ValueError(f"the inpainter returned {filled.shape} {filled.dtype}, expected {video.shape} uint8")
    sce = np.where(region[..., None], filled, video)
    return SyntheticPair(task=Task.MASK_FILL, sce_video=sce, target_video=video.copy(), mask=region, prompt="",
                         object_id=int(object_id), info={"dilate": int(dilate), "effects": effects is not None})
