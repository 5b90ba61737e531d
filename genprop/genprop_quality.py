"""How well a GenProp model propagates edits in the procedural world, scored against exact ground truth.

Held-out benchmark cases (``genprop.datasets.procedural.cases``: the target is rendered from the edited
scene) are propagated from their edited first frame, and scored on frames 2..T (frame 1 is given):

- edits (``remove``, ``replace``, ``insert``, ``background``): PSNR (dB) against the target, over whole
  frames (``<task>_psnr_<method>``), inside the case's edit region (``<task>_psnr_region_<method>``), inside
  its shadow/reflection where it has one (``<task>_psnr_fx_<method>``) and against the original outside the
  edit region (``<task>_psnr_m_<method>``, the paper's PSNR_m), for ``model`` and three references that need
  no model: ``identity`` (the original video, what a propagation that does nothing scores), ``flow_warp`` and
  ``track_inpaint`` (the classical baselines, ``genprop.baselines``);
- ``track``: IoU against the object's mask (``track_iou_<method>``) and against the object plus its shadow
  and reflection (``track_iou_fx_<method>``, the tracking floor), for ``colour`` (the painted change segmented
  from the generated frames, ``propagation.tracking.track_mask``: the object and its tinted reflection), ``flow``
  (the classical baseline: the edit region carried by optical flow), ``flow_warp_colour`` (the painted change
  segmented from the flow-warp baseline's frames: what a flow-anchored GenProp that only copied its anchor would
  score) and ``colour_target`` (the painted change of the ground-truth target, the most this readout reaches
  with effects: the object and its reflection, not the shadow, which the paint does not change);
- every task, when the run trains the MPD: ``<task>_iou_mpd`` (and, for edits, ``<task>_recall_mpd``: the share
  of the case's mask it covers), the MPD's mask (>= the checkpoint's calibrated threshold, else 0.5) against the case's mask
  (``track``: against the object, and ``track_iou_fx_mpd`` against the object with its effects, which colour-fill
  pairs of a world with effect masks train it to predict).

Scores of a set of cases are means (``mean_scores``), with ``<task>_cases`` counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genprop.backbone_quality import psnr_after_first
from genprop.baselines import propagate_flow_warp, propagate_track_inpaint
from genprop.datasets.procedural import Case, WorldConfig, make_case, make_scene, render
from genprop.metrics import iou
from genprop.metrics import psnr as metrics_psnr
from genprop.metrics import psnr_m
from genprop.models.trained_clip import MASK_THRESHOLD, calibrated_threshold
from genprop.propagation.tracking import track_mask
from genprop.tasks import Task



@dataclass(frozen=True)
class CaseSpec:
    """Which procedural cases to score.

    Args:
        seeds (tuple[int, ...]): scene seeds (held out: never used for training).
        tasks (tuple[str, ...], default ("remove", "track")): benchmark tasks, one case of each per scene.
        frames, height, width (int): clip geometry.
        fps (str): frame rate of the world.
    """

    seeds: tuple[int, ...]
    tasks: tuple[str, ...] = ("remove", "track")
    frames: int = 9
    height: int = 32
    width: int = 32
    fps: str = "12"

    def world(self) -> WorldConfig:
        return WorldConfig(videos=0, frames=self.frames, height=self.height, width=self.width, fps=self.fps,
                           tasks=self.tasks)


def make_validation_cases(spec: CaseSpec) -> list[Case]:
    """One case per task and seed, in seed order; a case whose edit is empty (no visible object) is left out.

    Args:
        spec (CaseSpec): the seeds, tasks and geometry.
    """
    world, cases = spec.world(), []
    for seed in spec.seeds:
        scene = make_scene(int(seed), world)
        original = render(scene)
        for task in spec.tasks:
            try:
                cases.append(make_case(scene, f"val{int(seed)}", task, original=original))
            except RuntimeError:  # the case's own check: an empty edit mask
                continue
    return cases


def psnr_frames_after_first(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB, capped at 100) over frames 2..T of two uint8 clips (T, H, W, 3)."""
    return float(psnr_after_first(pred[None], target[None])[0])


def iou_frames_after_first(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-frame IoU over frames 2..T of two (T, H, W) bool masks (a frame where both are empty: 1)."""
    return float(np.mean([iou(p, g) for p, g in zip(pred[1:], gt[1:])]))


# MPD mask values a threshold is calibrated over (``calibrate_mask_threshold``): 0.05 … 0.95 in steps of 0.05, fine
# enough that an area-balanced MPD, whose best cut lies high (0.7-0.9), is not cut a whole step off it
MASK_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _check_paired(masks: list[np.ndarray], truths: list[np.ndarray]) -> None:
    """Raise ValueError unless there is at least one case and one true region per mask."""
    if not masks or len(masks) != len(truths):
        raise ValueError(f"need one true region per mask and at least one case; got {len(masks)} masks and "
                         f"{len(truths)} regions")


def _best_cut(by: dict[float, float]) -> float:
    """The threshold of highest mean IoU in ``{threshold: IoU}``; on a tie the lowest."""
    return max(by, key=lambda t: (by[t], -t))


def calibrate_mask_threshold(masks: list[np.ndarray], truths: list[np.ndarray],
                             thresholds: tuple[float, ...] = MASK_THRESHOLDS) -> tuple[float, float, dict]:
    """The MPD mask value at which its region scores best on a set of (validation) cases.

    Args:
        masks (list[np.ndarray]): per case, (T, H, W) float, the MPD's mask.
        truths (list[np.ndarray]): per case, (T, H, W) bool, the true edit region.
        thresholds (tuple[float, ...]): the values tried; on a tie the first (lowest) wins.

    Returns:
        (threshold, its mean IoU over frames 2..T, {threshold: mean IoU} for every value tried).

    Raises:
        ValueError: no cases, or masks and truths that do not pair up.
    """
    _check_paired(masks, truths)
    by = {float(t): float(np.mean([iou_frames_after_first(m >= t, g) for m, g in zip(masks, truths)]))
          for t in thresholds}
    best = _best_cut(by)
    return best, by[best], by


def mask_by_frame(masks: list[np.ndarray], truths: list[np.ndarray], cut: float,
                  thresholds: tuple[float, ...] = MASK_THRESHOLDS) -> list[dict]:
    """How the MPD's mask holds up over the clip: per frame 2..T, over a set of cases.

    Args:
        masks (list[np.ndarray]): per case, (T, H, W) float, the MPD's mask.
        truths (list[np.ndarray]): per case, (T, H, W) bool, the true edit region.
        cut (float): the threshold the region is cut at (the task's calibrated one).
        thresholds (tuple[float, ...]): the values the per-frame best cut is chosen from.

    Returns:
        One dict per frame from the second: ``frame`` (1-based), ``inside`` / ``outside`` (the mask's mean over the
        true region and over the rest, averaged over cases), ``iou`` (at ``cut``) and ``best_cut`` with its
        ``best_iou`` (the threshold that would score that frame best over these cases).

    Raises:
        ValueError: no cases, or masks and truths that do not pair up.
    """
    _check_paired(masks, truths)
    rows = []
    for f in range(1, min(m.shape[0] for m in masks)):
        inside = [float(m[f][g[f]].mean()) for m, g in zip(masks, truths) if g[f].any()]
        outside = [float(m[f][~g[f]].mean()) for m, g in zip(masks, truths) if (~g[f]).any()]
        by = {float(t): float(np.mean([iou(m[f] >= t, g[f]) for m, g in zip(masks, truths)])) for t in thresholds}
        best = _best_cut(by)
        rows.append({"frame": f + 1, "inside": float(np.mean(inside)) if inside else float("nan"),
                     "outside": float(np.mean(outside)) if outside else float("nan"),
                     "iou": float(np.mean([iou(m[f] >= cut, g[f]) for m, g in zip(masks, truths)])),
                     "best_cut": best, "best_iou": by[best]})
    return rows


def task_id_for(case_task: str, trained_tasks: set[str] | None = None) -> int:
    """The task embedding a case is propagated with; the default (0) when the run never trained that task.

    Args:
        case_task (str): the benchmark task (``Task.for_case``: replace and background are the default).
        trained_tasks (set[str] | None): the propagation names (``Task.cli_name``) of the tasks the run's
            augmentations trained ("insert" = copy-and-paste, "remove" = mask-and-fill, "track" = colour fill);
            None = all of them.
    """
    task = Task.for_case(case_task)
    if trained_tasks is not None and task.cli_name not in trained_tasks:
        return int(Task.DEFAULT)
    return int(task)


def _edit_scores(case: Case, frames: np.ndarray, method: str) -> dict[str, float]:
    out = {f"{case.task}_psnr_{method}": psnr_frames_after_first(frames, case.target),
           f"{case.task}_psnr_region_{method}": metrics_psnr(frames[1:], case.target[1:], case.mask[1:]),
           f"{case.task}_psnr_m_{method}": psnr_m(frames[1:], case.original[1:], case.mask[1:])}
    if case.effect_mask is not None and case.effect_mask[1:].any():
        out[f"{case.task}_psnr_fx_{method}"] = metrics_psnr(frames[1:], case.target[1:], case.effect_mask[1:])
    return out


def _track_scores(case: Case, mask: np.ndarray, method: str) -> dict[str, float]:
    return {f"track_iou_{method}": iou_frames_after_first(mask, object_mask(case)),
            f"track_iou_fx_{method}": iou_frames_after_first(mask, case.mask)}


def object_mask(case: Case) -> np.ndarray:
    """(T, H, W) bool: the case's object without its effects (the whole mask when it has no effect mask)."""
    return case.mask if case.effect_mask is None else case.mask & ~case.effect_mask


def recall_frames_after_first(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-frame recall over frames 2..T of (T, H, W) bool masks: the share of ``gt`` that ``pred`` covers
    (a frame with an empty ``gt``: 1)."""
    return float(np.mean([(p & g).sum() / g.sum() if g.any() else 1.0 for p, g in zip(pred[1:], gt[1:])]))


def case_scores(case: Case, frames: np.ndarray, mpd_mask: np.ndarray | None = None,
                mask_threshold: float = MASK_THRESHOLD) -> dict[str, float]:
    """The model's scores on one case.

    Args:
        case (Case): the benchmark case.
        frames (np.ndarray): (T, H, W, 3) uint8, the propagated video.
        mpd_mask (np.ndarray | None): (T, H, W) in [0, 1], the MPD's mask; None when the run has no MPD.
        mask_threshold (float, default 0.5): the MPD mask value that counts as the edit (a checkpoint's calibrated
            ``TrainedClip.mpd_threshold``).
    """
    mpd = None if mpd_mask is None else mpd_mask >= mask_threshold
    if case.task == "track":
        out = _track_scores(case, track_mask(frames, case.original, case.target[0]), "colour")
        if mpd is not None:
            out.update(_track_scores(case, mpd, "mpd"))
        return out
    out = _edit_scores(case, frames, "model")
    if mpd is not None:
        out[f"{case.task}_iou_mpd"] = iou_frames_after_first(mpd, case.mask)
        out[f"{case.task}_recall_mpd"] = recall_frames_after_first(mpd, case.mask)
    return out


def reference_scores(case: Case) -> dict[str, float]:
    """The model-free references on one case (identity and the classical baselines)."""
    edited = case.target[0]
    if case.task == "track":
        flow = propagate_track_inpaint(case.original, edited, task="track")["mask"]
        colour = track_mask(case.target, case.original, edited)
        warped = track_mask(propagate_flow_warp(case.original, edited)["frames"], case.original, edited)
        return {**_track_scores(case, flow, "flow"), **_track_scores(case, warped, "flow_warp_colour"),
                "track_iou_fx_colour_target": iou_frames_after_first(colour, case.mask)}
    baseline = propagate_track_inpaint(case.original, edited, task="remove" if case.task == "remove" else "edit")
    return {**_edit_scores(case, case.original, "identity"), **_edit_scores(case, baseline["frames"], "track_inpaint"),
            **_edit_scores(case, propagate_flow_warp(case.original, edited)["frames"], "flow_warp")}


def mean_scores(rows: list[dict], tasks: list[str] | None = None) -> dict[str, float]:
    """Per key, the mean over the rows that have it (None if none does); plus ``<task>_cases`` per task in ``tasks``.

    Args:
        rows (list[dict]): one dict of scores per case.
        tasks (list[str] | None): the task of each row (for the counts).
    """
    out = {}
    for k in sorted({k for r in rows for k in r}):
        values = [r[k] for r in rows if r.get(k) is not None]
        out[k] = float(np.mean(values)) if values else None
    for task in sorted(set(tasks or [])):
        out[f"{task}_cases"] = sum(1 for t in tasks if t == task)
    return out


def propagate_cases(model, cases: list[Case], *, num_steps: int = 4, guidance_scale: float = 1.0, seed: int = 0,
                    trained_tasks: set[str] | None = None, device: str = "cpu"):
    """Propagate every case's edited first frame with ``model``: yields (case, frames, MPD mask).

    Args:
        model (GenPropModel): the model (moved to ``device``, set to eval).
        cases (list[Case]): the cases.
        num_steps (int, default 4): sampling steps (few steps: the conditional mean, which PSNR rewards).
        guidance_scale (float, default 1.0): CFG scale; 1.0 disables guidance.
        seed (int, default 0): sampling seed (the same for every case).
        trained_tasks (set[str] | None): see :func:`task_id_for`.
        device (str, default "cpu"): torch device.
    """
    from genprop.propagation.config import PropagationConfig
    from genprop.propagation.propagate import Propagator

    propagators = {}  # one per clip geometry (all cases share one in a run): places the model once
    for case in cases:
        t, h, w = case.shape
        if case.shape not in propagators:
            # composite "none": validation scores the model's own frames, not the composite around them
            propagators[case.shape] = Propagator(model, PropagationConfig(
                working_area=h * w, window=t, overlap=1, num_steps=num_steps, guidance=guidance_scale, seed=seed,
                device=device, composite="none"))
        result = propagators[case.shape].run(case.original, case.target[0], case.prompt, task_id_for(case.task, trained_tasks))
        yield case, result.frames, result.mask


def score_genprop(model, cases: list[Case], *, mpd: bool = True, **sampling) -> dict[str, float]:
    """Mean model scores on ``cases`` (see the module docstring; references come from :func:`reference_scores`).

    Args:
        model (GenPropModel): the model to score.
        cases (list[Case]): held-out cases.
        mpd (bool, default True): score the MPD's mask (False for a run that does not train the MPD).
        **sampling: passed to :func:`propagate_cases` (``num_steps``, ``guidance_scale``, ``seed``,
            ``trained_tasks``, ``device``).
    """
    trained = sampling.get("trained_tasks")
    rows = [case_scores(case, frames, mask if mpd else None,
                        calibrated_threshold(model, task_id_for(case.task, trained)))
            for case, frames, mask in propagate_cases(model, cases, **sampling)]
    return mean_scores(rows, [c.task for c in cases])
