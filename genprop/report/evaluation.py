"""Score benchmark cases: GenProp's predictions and the classical baselines, with the same metrics.

A case is a procedural world's ``cases/<case_id>/`` directory (``case.json``, ``ground_truth.npz``,
``edited_first_frame.png``); GenProp's prediction is ``<predictions>/<case_id>.mp4`` (what users get: the
composite, with its edit region ``<case_id>_mask.mp4``) and, scored as a separate method ``genprop_raw`` so
the composite never hides the model, ``<case_id>_raw.mp4`` (the model's frames without the composite). The MPD's
mask ``<case_id>_mpd.mp4`` is scored as a method of its own, ``genprop_mpd``, on the tracking IoU alone.

Each metric is scored only where it is defined (:func:`defined_metrics`; null elsewhere, never 0): PSNR_m outside
the case's rough edit mask (for replace it is already the union over the original and the new object) and
PSNR/SSIM against the target on every case; PSNR in the effect region (shadow/reflection) on removals with an
effect mask; IoU on tracking cases, against the object with its effects, from the painted change segmented in
each propagation's output (``propagation.tracking.track_mask``: the object and its tinted reflection; GenProp,
flow_warp), the region a tracker tracked (track_inpaint's, the tracking floor's baseline) or the MPD's mask
(genprop_mpd). :func:`summarise` averages each metric per task over the cases where it is defined, with counts,
and over all cases for the metrics defined on every case.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np

from genprop import masks, metrics, storage, video_decode
from genprop.baselines import propagate_flow_warp, propagate_identity, propagate_track_inpaint
from genprop.datasets.procedural.config import TASKS
from genprop.errors import DataError
from genprop.propagation.tracking import read_mask_video, track_mask

log = logging.getLogger(__name__)

METHODS = ("genprop", "genprop_mpd", "genprop_raw", "identity", "flow_warp", "track_inpaint")
# methods that are a mask alone (no frames): scored on the tracking IoU only
MASK_METHODS = ("genprop_mpd",)
METRICS = ("psnr_m", "psnr_gt", "ssim_gt", "psnr_effect", "clip_t", "clip_i", "iou")
# the rows of the tables by task; GenProp's two tracking readouts are told apart by name
LABELS = {"genprop": "genprop (painted change)", "genprop_mpd": "genprop (MPD mask)"}


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


def read_mask_prediction(predictions: str, case: dict, suffix: str = "_mpd") -> dict | None:
    """A mask GenProp wrote for ``case`` (``<case_id><suffix>.mp4``, e.g. the MPD's) as {"frames": None,
    "track_mask": (T, H, W) bool}, or None when missing or not the case's shape.

    Args:
        predictions (str): the predictions directory. case (dict): from :func:`load_case`.
        suffix (str, default "_mpd"): the mask video's suffix.
    """
    url = storage.join(predictions, f"{case['case_id']}{suffix}.mp4")
    if not storage.exists(url):
        log.warning("%s: no mask; its IoU is null", url)
        return None
    try:
        mask = read_mask_video(url)
    except DataError as e:
        log.warning("%s; its IoU is null", e)
        return None
    if mask.shape != case["mask"].shape:
        log.warning("%s: mask is %s, the case %s; its IoU is null", url, mask.shape, case["mask"].shape)
        return None
    return {"frames": None, "track_mask": mask}


def run_methods(case: dict, predictions: str) -> dict[str, dict | None]:
    """Every method's output for ``case``: {method: {"frames", "mask"} or None}; ``genprop_mpd`` (the MPD's mask,
    {"frames": None, "track_mask"}) is read for tracking cases only, the only ones it is scored on."""
    original, edited = case["original"], case["edited"]
    tracker = propagate_track_inpaint(original, edited, case["task"])
    # the tracker's answer to a tracking case is the region it tracked (SAM 2's role; the tracking floor's baseline),
    # not the paint it pastes rigidly into its frames
    tracker["track_mask"] = tracker["mask"]
    return {"genprop": read_prediction(predictions, case),
            "genprop_mpd": read_mask_prediction(predictions, case, "_mpd") if case["task"] == "track" else None,
            "genprop_raw": read_prediction(predictions, case, "_raw", "_mpd"),
            "identity": propagate_identity(original, edited),
            "flow_warp": propagate_flow_warp(original, edited),
            "track_inpaint": tracker}


def defined_metrics(case: dict, method: str | None = None) -> tuple[str, ...]:
    """The metrics defined for ``method`` on ``case``, in :data:`METRICS` order.

    PSNR_m, PSNR/SSIM against the ground truth and CLIP-I on every case, CLIP-T where the case has a prompt,
    effects PSNR on removals with a non-empty effect mask, IoU on tracking cases; a mask method
    (:data:`MASK_METHODS`) has the IoU alone.

    Args:
        case (dict): from :func:`load_case` (``task``, ``effect_mask``, ``prompt``).
        method (str | None, default None): the method (None: one that outputs frames).
    """
    task, effect = case["task"], case.get("effect_mask")
    if method in MASK_METHODS:
        return ("iou",) if task == "track" else ()
    skip = set()
    if not (task == "remove" and effect is not None and effect.any()):
        skip.add("psnr_effect")
    if task != "track":
        skip.add("iou")
    if not case.get("prompt"):
        skip.add("clip_t")
    return tuple(m for m in METRICS if m not in skip)


def score(case: dict, output: dict | None, clip: metrics.ClipScorer | None, method: str | None = None) -> dict:
    """The metrics of one method's output on one case ({metric: value or None}; None where the metric is not
    defined, :func:`defined_metrics`, or the output is missing).

    Args:
        case (dict): from :func:`load_case`. output (dict | None): the method's output (``run_methods``).
        clip (ClipScorer | None): for CLIP-T/CLIP-I. method (str | None, default None): the method's name.
    """
    defined = defined_metrics(case, method)
    values = {m: None for m in METRICS}
    if output is None:
        return values
    frames, original, target, gt_mask = output.get("frames"), case["original"], case["target"], case["mask"]
    if frames is not None:
        radius = rough_radius(*original.shape[1:3])
        values.update(psnr_m=metrics.psnr_m(frames, original, gt_mask, radius=radius),
                      psnr_gt=metrics.psnr(frames, target), ssim_gt=metrics.ssim(frames, target),
                      clip_t=metrics.clip_t(clip, frames, case.get("prompt")), clip_i=metrics.clip_i(clip, frames))
        if "psnr_effect" in defined:
            values["psnr_effect"] = metrics.psnr(frames, target, case["effect_mask"])
    if "iou" in defined:  # track: against the object with its effects, as the painted change reaches its reflection
        pred_mask = output.get("track_mask")
        if pred_mask is None and frames is not None:  # a propagation: the painted change of its frames
            pred_mask = track_mask(frames, original, case["edited"])
        values["iou"] = metrics.iou(pred_mask, gt_mask) if pred_mask is not None else None
    return {m: values[m] if m in defined else None for m in METRICS}


def _means(rows: list[dict], metrics_: list[str], is_defined) -> tuple[dict, dict]:
    """({metric: mean of the known values or None}, {metric: how many}) over the ``rows`` where it is defined."""
    means, counts = {}, {}
    for m in metrics_:
        vals = [r[m] for r in rows if r[m] is not None and is_defined(r, m)]
        means[m], counts[m] = (float(np.mean(vals)) if vals else None), len(vals)
    return means, counts


def summarise(rows: list[dict], defined: dict[tuple[str, str], tuple[str, ...]] | None = None) -> dict:
    """Each metric's mean over the cases where it is defined, per task and over all cases, with counts.

    Args:
        rows (list[dict]): per-case metric rows (``id``, ``task``, ``method``, metrics).
        defined (dict | None): {(case id, method): :func:`defined_metrics`}; None = where a row has a value.

    Returns:
        {"summary": {method: {metric: mean or None}} and "counts": {method: {metric: n}}, over all cases, for the
        metrics defined on every case (a method with none of them is left out); "by_task": {task: {"cases": n,
        "defined": {metric: cases where it is defined}, "summary": {method: {metric: mean or None}},
        "counts": {method: {metric: n}}}}, a metric listed where it is defined on some case of the task (n: the
        cases its mean is over)}.
    """
    def is_defined(r: dict, m: str) -> bool:
        return m in defined[(r["id"], r["method"])] if defined is not None else r[m] is not None

    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    methods += sorted({r["method"] for r in rows} - set(methods))
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["id"], []).append(r)
    case_defined = {c: {m for m in METRICS if any(is_defined(r, m) for r in rs)} for c, rs in by_case.items()}
    # a metric of the overall section is defined on every case (for some method)
    overall = [m for m in METRICS if by_case and all(m in d for d in case_defined.values())]
    out: dict = {"summary": {}, "counts": {}, "by_task": {}}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        shown = [m for m in overall if all(is_defined(r, m) for r in mine)]
        if shown:
            out["summary"][method], out["counts"][method] = _means(mine, shown, is_defined)
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    tasks += sorted({r["task"] for r in rows} - set(tasks))
    for task in tasks:
        ids = [c for c, rs in by_case.items() if rs[0]["task"] == task]
        entry: dict = {"cases": len(ids), "defined": {}, "summary": {}, "counts": {}}
        for m in METRICS:
            n = sum(m in case_defined[c] for c in ids)
            if n:
                entry["defined"][m] = n
        for method in methods:
            mine = [r for r in rows if r["method"] == method and r["task"] == task]
            shown = [m for m in entry["defined"] if any(is_defined(r, m) for r in mine)]
            if shown:
                entry["summary"][method], entry["counts"][method] = _means(mine, shown, is_defined)
        out["by_task"][task] = entry
    return out
