"""Read one planned clip (frames + instance masks), random-crop it to the configured size, make its pair."""

from __future__ import annotations

import cv2
import numpy as np

from genprop.errors import AnnotationError, DataError
from genprop.shards.config import ShardsConfig
from genprop.synth import SyntheticPair, make_pair
from genprop.tasks import Task


def crop_box(height: int, width: int, out_hw: tuple[int, int], scale: tuple[float, float],
             rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random (y0, x0, h, w) crop with the output's aspect ratio, its height ``scale`` of the frame's."""
    aspect = out_hw[1] / out_hw[0]
    ch = max(1, round(height * float(rng.uniform(*scale))))
    cw = round(ch * aspect)
    if cw > width:
        cw, ch = width, max(1, round(width / aspect))
    y0 = int(rng.integers(0, height - ch + 1))
    x0 = int(rng.integers(0, width - cw + 1))
    return y0, x0, ch, cw


def crop_resize_masks(masks: np.ndarray, box, out_hw: tuple[int, int]) -> np.ndarray:
    """Crop (K, T, H, W) bool masks to ``box`` and resize them to ``out_hw`` (nearest)."""
    y0, x0, ch, cw = box
    m = masks[:, :, y0:y0 + ch, x0:x0 + cw]
    if (ch, cw) != tuple(out_hw):
        size = (out_hw[1], out_hw[0])
        m = np.stack([np.stack([cv2.resize(x.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) for x in obj])
                      for obj in m]).astype(bool)
    return np.ascontiguousarray(m)


def crop_resize(frames: np.ndarray, masks: np.ndarray, box, out_hw: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Crop (T, H, W, 3) frames and (K, T, H, W) masks to ``box``, resize to ``out_hw`` (area / nearest)."""
    y0, x0, ch, cw = box
    f = frames[:, y0:y0 + ch, x0:x0 + cw]
    if (ch, cw) != tuple(out_hw):
        f = np.stack([cv2.resize(x, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_AREA) for x in f])
    return np.ascontiguousarray(f), crop_resize_masks(masks, box, out_hw)


def read_clip(record, indices, config: ShardsConfig, rng: np.random.Generator, effects: bool = False
              ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], np.ndarray | None]:
    """Frames, masks and (when ``effects`` and the dataset has them) effect masks of ``indices``, cropped and
    resized alike.

    Returns:
        ((T, H, W, 3) uint8, (K, T, H, W) bool, object ids, (K, T, H, W) bool effect masks or None).

    Raises:
        DataError: unreadable frames or annotations, or annotations whose size disagrees with the frames.
    """
    frames = record.frames(indices)
    masks = record.masks(indices)
    if masks.masks.shape[2:] != frames.shape[1:3]:
        raise AnnotationError(record.url, f"masks are {masks.masks.shape[2:]} but frames are {frames.shape[1:3]}")
    fx_masks = record.effects(indices) if effects else None
    if fx_masks is not None and fx_masks.masks.shape != masks.masks.shape:
        raise AnnotationError(record.url, f"effect masks are {fx_masks.masks.shape} but instance masks are "
                                          f"{masks.masks.shape}")
    out_hw = (config.height, config.width)
    box = crop_box(frames.shape[1], frames.shape[2], out_hw, config.crop_scale, rng)
    f, m = crop_resize(frames, masks.masks, box, out_hw)
    fx = None if fx_masks is None else crop_resize_masks(fx_masks.masks, box, out_hw)
    return f, m, tuple(masks.object_ids), fx


def make_planned_pair(row: dict, dataset, config: ShardsConfig, inpainter=None,
                      donors: dict | None = None) -> SyntheticPair:
    """The routed pair of one planned sample (a :class:`~genprop.shards.plan.PlannedSample` row).

    A copy-and-paste donor that cannot be read is replaced by the plan's next donor (``donor_fallbacks``), and
    after the last by the video itself, so a bad donor never costs the receiving video its sample.

    Args:
        row (dict): the planned sample.
        dataset: the opened input dataset.
        config (ShardsConfig): clip size, crop, augmentations.
        inpainter: mask-and-fill's inpainter (None = OpenCV).
        donors (dict | None): filled with ``{"used": donor video id ("" = the video itself), "skipped":
            [{"video_id", "reason"}]}`` of the donors that could not be read.

    Raises:
        DataError: bad input of the video itself; SkipSample: no usable object.
    """
    from genprop.synth import PairSpec

    spec = PairSpec(task=Task.from_augmentation(row["task"]), seed=int(row["seed"]), colour=tuple(row["colour"]),
                    prompt=row["prompt"])
    rng = np.random.default_rng(row["seed"])  # crop draws; the pair itself uses spec.seed separately
    video, masks, ids, effects = read_clip(dataset.record(row["video_id"]), row["indices"], config, rng,
                                           effects=config.synth.uses_effects(spec.task))
    donor, used, skipped = (None, None, None, None), "", []
    candidates = [[row["donor_id"], row["donor_indices"]]] + list(row.get("donor_fallbacks", [])) \
        if row["donor_id"] else []
    for vid, indices in candidates:  # copy-and-paste pastes the donor's object alone: no effect masks read
        try:
            donor, used = read_clip(dataset.record(vid), indices, config, rng), vid
            break
        except DataError as e:
            skipped.append({"video_id": vid, "reason": f"{e.url}: {e.reason}"})
    if donors is not None:
        donors.update(used=used, skipped=skipped)
    return make_pair(spec, video, masks, ids, config.synth, donor_video=donor[0], donor_masks=donor[1],
                     donor_ids=donor[2], inpainter=inpainter, effects=effects)
