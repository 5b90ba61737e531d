"""Tracking output: the painted change segmented from generated frames, and mask videos.

A colour-fill edit paints an object one solid colour in the first frame; the model carries the
paint through the video (paper, Fig. 6e), together with what the paint changes around the object
(its reflection takes the paint). The painted colour is read off the first-frame edit (median
colour of the pixels the edit changed). The tracked region of every generated frame is the painted
change: the pixels that differ from the source frame as the first-frame edit does (by more than
``EDIT_DIFF_THRESHOLD``) and moved towards the painted colour. A region segmented by the colour
alone would miss the tinted reflection, which the paint reaches only in part
(docs/design-decisions.md, "Tracking reads the painted change"). The MPD's mask comes on the latent
grid; ``FrameMap.mask_from_grid`` upsamples it.
"""

from __future__ import annotations

import numpy as np

from genprop import video, video_decode

# Pixels whose RGB changed by more than this (max over channels) count as edited in frame 1.
EDIT_DIFF_THRESHOLD = 24


def edit_region(original_first: np.ndarray, edited_first: np.ndarray,
                threshold: int = EDIT_DIFF_THRESHOLD) -> np.ndarray:
    """(H, W) bool: where the edited first frame differs from the original one (any leading shape: (T, H, W, 3)
    frames give (T, H, W)).

    Args:
        original_first (np.ndarray), edited_first (np.ndarray): (H, W, 3) uint8.
        threshold (int, default 24): max-channel difference counted as an edit.
    """
    diff = np.abs(original_first.astype(np.int16) - edited_first.astype(np.int16)).max(axis=-1)
    return diff > threshold


def painted_colour(original_first: np.ndarray, edited_first: np.ndarray) -> np.ndarray | None:
    """The colour painted in a colour-fill edit: median RGB of the edited pixels, (3,) uint8 (None: no edit).

    Args:
        original_first (np.ndarray), edited_first (np.ndarray): (H, W, 3) uint8.
    """
    region = edit_region(original_first, edited_first)
    if not region.any():
        return None
    return np.median(edited_first[region], axis=0).round().astype(np.uint8)


def painted_change(frames: np.ndarray, original: np.ndarray, colour: np.ndarray,
                   threshold: int = EDIT_DIFF_THRESHOLD) -> np.ndarray:
    """(T, H, W) bool: pixels that changed from ``original`` by more than ``threshold`` and towards ``colour``.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8 generated frames (full resolution).
        original (np.ndarray): (T, H, W, 3) uint8, the source video they were propagated over.
        colour (np.ndarray): (3,) the painted colour.
        threshold (int, default 24): max-channel difference counted as a change (:func:`edit_region`'s rule).
    """
    if frames.shape != original.shape:
        raise ValueError(f"frames {frames.shape} and the source video {original.shape} must have one shape")
    out, src = frames.astype(np.float32), original.astype(np.float32)
    c = np.asarray(colour, np.float32)
    towards = ((out - c) ** 2).sum(axis=-1) < ((src - c) ** 2).sum(axis=-1)
    return edit_region(original, frames, threshold) & towards


def track_mask(frames: np.ndarray, original: np.ndarray, edited_first: np.ndarray,
               threshold: int = EDIT_DIFF_THRESHOLD) -> np.ndarray:
    """The tracked region of a colour-fill propagation, (T, H, W) bool (all False when frame 1 has no edit).

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8 generated frames.
        original (np.ndarray): (T, H, W, 3) uint8, the source video.
        edited_first (np.ndarray): (H, W, 3) uint8, the colour-fill edit of its first frame.
        threshold (int, default 24): see :func:`painted_change`.
    """
    colour = painted_colour(original[0], edited_first)
    if colour is None:
        return np.zeros(frames.shape[:3], bool)
    return painted_change(frames, original, colour, threshold)


def mask_levels(mask: np.ndarray) -> np.ndarray:
    """A bool or [0, 1] float mask (any shape) -> uint8 grey levels of the same shape (255 = edited)."""
    if mask.dtype == bool:
        return mask.astype(np.uint8) * 255
    return (np.clip(mask.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)


def centre_at_half(mask: np.ndarray, threshold: float) -> np.ndarray:
    """A [0, 1] float mask remapped, monotonically and piecewise linearly, so that ``threshold`` lands at 0.5.

    The MPD's mask video is written this way: it stays soft (the mask's order and its 0 and 1 are kept), and a
    reader that cuts it at mid-grey (:func:`read_mask_video`) gets the region at the checkpoint's calibrated cut.

    Args:
        mask (np.ndarray): float in [0, 1], any shape.
        threshold (float): in (0, 1), the cut that becomes 0.5.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"mask threshold {threshold} must lie strictly between 0 and 1")
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)
    below = 0.5 * m / threshold
    above = 1.0 - 0.5 * (1.0 - m) / (1.0 - threshold)
    return np.where(m < threshold, np.minimum(below, np.nextafter(np.float32(0.5), np.float32(0))), above)


def mask_frames(mask: np.ndarray) -> np.ndarray:
    """A bool or [0, 1] float mask (T, H, W) -> grey RGB frames (T, H, W, 3) uint8 (255 = edited)."""
    return np.repeat(mask_levels(mask)[..., None], 3, axis=-1)


def write_mask_video(mask: np.ndarray, url: str, fps) -> None:
    """Write a mask (T, H, W) as a grey H.264 mp4 (lossless, so 0/255 and soft values survive).

    Args:
        mask (np.ndarray): bool or float in [0, 1].
        url (str): destination (written atomically).
        fps (Fraction | str | int): the frame rate (the video's own).
    """
    video.encode(mask_frames(mask), url, fps, lossless=True)


def read_mask_video(url: str, threshold: float = 0.5) -> np.ndarray:
    """Read a mask video written by :func:`write_mask_video` as (T, H, W) bool (value >= threshold)."""
    frames = video_decode.decode(url)
    return frames.astype(np.float32).mean(axis=-1) / 255.0 >= threshold
