"""Score benchmark cases: GenProp's predictions and the classical baselines, with the same metrics.

A case is a procedural world's ``cases/<case_id>/`` directory (``case.json``, ``ground_truth.npz``,
``edited_first_frame.png``); GenProp's prediction is ``<predictions>/<case_id>.mp4`` (what users get: the
composite, with its edit region ``<case_id>_mask.mp4``) and, scored as a separate method ``genprop_raw`` so
the composite never hides the model, ``<case_id>_raw.mp4`` (the model's frames without the composite, with
the MPD's mask ``<case_id>_mpd.mp4``). Masks per metric: PSNR_m outside the case's rough edit mask (for replace
it is already the union over the original and the new object); PSNR/SSIM against the target;
PSNR in the effect region (shadow/reflection) for removals with effects; IoU for tracking cases
against the object with its effects, from the painted change segmented in each propagation's output
(``propagation.tracking.track_mask``: the object and its tinted reflection; GenProp, flow_warp) or
the region a tracker tracked (track_inpaint's, the tracking floor's baseline); for other tasks from the
method's own mask where it has one.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np

from genprop import masks, metrics, storage, video_decode
from genprop.baselines import propagate_flow_warp, propagate_identity, propagate_track_inpaint
from genprop.errors import DataError
from genprop.propagation.tracking import read_mask_video, track_mask

log = logging.getLogger(__name__)

METHODS = ("genprop", "genprop_raw", "identity", "flow_warp", "track_inpaint")
METRICS = ("psnr_m", "psnr_gt", "ssim_gt", "psnr_effect", "clip_t", "clip_i", "iou")


def rough_radius(height: int, width: int) -> int:
    """Dilation of the edit masks for PSNR_m: 2 % of the short side, at least 1 pixel (the paper's rough masks)."""
    return max(1, round(0.02 * min(height, width)))


def case_dirs(url: str) -> list[str]:
    """The case directories under ``url`` (a world root or its ``cases/``), sorted by id."""
    root = storage.join(url, "cases") if storage.exists(storage.join(url, "cases")) else url.rstrip("/")
    return [storage.join(root, n) for n in storage.listdir(root)
            if storage.exists(storage.join(root, n, "case.json"))]


def load_case(url: str) -> dict:
    """One case: its ``case.json`` fields plus original, target, mask, effect_mask (arrays) and edited (image)."""
    info = json.loads(storage.read_text(storage.join(url, "case.json")))
    gt = np.load(io.BytesIO(storage.read_bytes(storage.join(url, "ground_truth.npz"))))
    info.update(original=gt["original"], target=gt["target"], mask=gt["mask"].astype(bool),
                effect_mask=gt["effect_mask"].astype(bool) if "effect_mask" in gt.files else None,
                edited=masks.read_image(storage.join(url, "edited_first_frame.png")), url=url)
    return info


def read_prediction(predictions: str, case: dict, video_suffix: str = "", mask_suffix: str = "_mask") -> dict | None:
    """GenProp's output for ``case`` ({"frames", "mask"}) or None when missing or not the case's shape.

    Args:
        predictions (str): the predictions directory. case (dict): from :func:`load_case`.
        video_suffix (str, default ""), mask_suffix (str, default "_mask"): the files' suffixes
            (``"_raw"``, ``"_mpd"``: the model's output without the composite).
    """
    url = storage.join(predictions, f"{case['case_id']}{video_suffix}.mp4")
    if not storage.exists(url):
        log.warning("%s: no GenProp prediction; its metrics are null", url)
        return None
    try:
        frames = video_decode.decode(url)
        mask_url = storage.join(predictions, f"{case['case_id']}{mask_suffix}.mp4")
        mask = read_mask_video(mask_url) if storage.exists(mask_url) else None
    except DataError as e:
        log.warning("%s; its metrics are null", e)
        return None
    if frames.shape != case["original"].shape or (mask is not None and mask.shape != case["mask"].shape):
        log.warning("%s: prediction is %s, the case %s; its metrics are null", url, frames.shape,
                    case["original"].shape)
        return None
    return {"frames": frames, "mask": mask}


def run_methods(case: dict, predictions: str) -> dict[str, dict | None]:
    """Every method's output for ``case``: {method: {"frames", "mask"} or None}."""
    original, edited = case["original"], case["edited"]
    tracker = propagate_track_inpaint(original, edited, case["task"])
    # the tracker's answer to a tracking case is the region it tracked (SAM 2's role; the tracking floor's baseline),
    # not the paint it pastes rigidly into its frames
    tracker["track_mask"] = tracker["mask"]
    return {"genprop": read_prediction(predictions, case),
            "genprop_raw": read_prediction(predictions, case, "_raw", "_mpd"),
            "identity": propagate_identity(original, edited),
            "flow_warp": propagate_flow_warp(original, edited),
            "track_inpaint": tracker}


def score(case: dict, output: dict | None, clip: metrics.ClipScorer | None) -> dict:
    """The metrics of one method's output on one case ({metric: value or None})."""
    if output is None:
        return {m: None for m in METRICS}
    frames, original, target, gt_mask = output["frames"], case["original"], case["target"], case["mask"]
    radius = rough_radius(*original.shape[1:3])
    effect = case["effect_mask"]
    iou_gt = gt_mask  # track: the object with its effects, as the painted change reaches its reflection
    if case["task"] == "track":
        pred_mask = output.get("track_mask")
        if pred_mask is None:  # a propagation: the painted change of its frames
            pred_mask = track_mask(frames, original, case["edited"])
    else:
        pred_mask = output.get("mask")
    return {
        "psnr_m": metrics.psnr_m(frames, original, gt_mask, radius=radius),
        "psnr_gt": metrics.psnr(frames, target),
        "ssim_gt": metrics.ssim(frames, target),
        "psnr_effect": metrics.psnr(frames, target, effect)
        if case["task"] == "remove" and effect is not None and effect.any() else None,
        "clip_t": metrics.clip_t(clip, frames, case.get("prompt")),
        "clip_i": metrics.clip_i(clip, frames),
        "iou": metrics.iou(pred_mask, iou_gt) if pred_mask is not None else None,
    }


def summarise(rows: list[dict]) -> dict:
    """{method: {metric: mean over the cases where it is known, or None}}."""
    out = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        out[method] = {}
        for m in METRICS:
            vals = [r[m] for r in mine if r[m] is not None]
            out[method][m] = float(np.mean(vals)) if vals else None
    return out
