"""Score the composite's two sources of the edit region on a run's validation cases, and record them.

    python scripts/score_regions.py --model models/procedural-genprop/model [--write]

For every validation case of the run that exported ``--model`` (its ``run_config.json``: the learning curve's
held-out scenes, tasks and geometry), the case is propagated as ``genprop propagate`` does (default settings,
the run's validation sampling: 2 steps, guidance 1) and two regions are scored against the case's true edit
region (object and effects) by IoU over frames 2..T: the "diff" region (the composite's default) and the MPD's
mask cut at the threshold calibrated on the cases of its task (``genprop_quality.calibrate_mask_threshold``: the
mask value, of 0.05 .. 0.95, at which its region scores best). ``--write`` stores the IoUs (``region_iou``), the
thresholds per task (``mpd_task_thresholds``) and over all cases (``mpd_threshold``, for a task without its own)
in the checkpoint's ``genprop_clip.json``: the composite's "auto" takes the MPD's mask only where it scores above
the diff region, and the MPD's region is cut at its task's threshold. The printed record also gives, per task,
how the MPD's mask holds up over the clip (``mpd_by_frame``: ``genprop_quality.mask_by_frame`` at the task's cut).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    from genprop.configs import from_dict
    from genprop.genprop_quality import (calibrate_mask_threshold, iou_frames_after_first, make_validation_cases,
                                         mask_by_frame, task_id_for)
    from genprop.models.trained_clip import save_trained_clip
    from genprop.propagation import PropagationConfig, Propagator, load_model
    from genprop.tasks import Task
    from genprop.training.procedural_genprop import GenPropRunConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a checkpoint with run_config.json (a procedural run's export)")
    p.add_argument("--write", action="store_true", help="record the figures in its genprop_clip.json")
    args = p.parse_args()
    with open(os.path.join(args.model, "run_config.json")) as f:
        run = from_dict(GenPropRunConfig, json.load(f)["config"])
    model = load_model(args.model)
    if model.trained_clip is None:
        sys.exit(f"{args.model}: no genprop_clip.json to record the figures in")
    cases = make_validation_cases(run.val_spec())
    # one propagation per case: the diff region is the composite's, the MPD's soft mask is cut afterwards
    prop = Propagator(model, PropagationConfig(num_steps=run.val_steps, guidance=run.val_guidance,
                                               seed=run.val_seed, composite="diff"))
    diff, masks, tasks = [], [], []
    for case in cases:
        task = task_id_for(case.task, run.trained_tasks())
        tasks.append(Task(task).cli_name)
        res = prop.run(case.original, case.target[0], case.prompt, task)
        diff.append(iou_frames_after_first(res.region, case.mask))
        masks.append(res.mask)
    threshold, _, by_threshold = calibrate_mask_threshold(masks, [c.mask for c in cases])
    # one cut per propagated task, each calibrated on that task's cases alone, and how its mask holds up over the clip
    task_cuts, by_frame = {}, {}
    for name in sorted(set(tasks)):
        own_masks = [m for m, t in zip(masks, tasks) if t == name]
        own_truths = [c.mask for c, t in zip(cases, tasks) if t == name]
        task_cuts[name] = calibrate_mask_threshold(own_masks, own_truths)[0]
        by_frame[name] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                          for row in mask_by_frame(own_masks, own_truths, task_cuts[name])]
    scores = {"diff": diff, "mpd": [iou_frames_after_first(m >= task_cuts[t], c.mask)
                                    for m, c, t in zip(masks, cases, tasks)]}
    region_iou = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
    by_task = {k: {t: round(float(np.mean([s for s, c in zip(v, cases) if c.task == t])), 4)
                   for t in sorted({c.task for c in cases})} for k, v in scores.items()}
    print(json.dumps({"cases": len(cases), "region_iou": region_iou, "mpd_threshold": threshold,
                      "mpd_task_thresholds": task_cuts, "by_task": by_task, "mpd_by_frame": by_frame,
                      "mpd_iou_by_threshold": {f"{t:g}": round(v, 4) for t, v in by_threshold.items()}}))
    if args.write:
        save_trained_clip(args.model, dataclasses.replace(model.trained_clip, region_iou=region_iou,
                                                          mpd_threshold=threshold, mpd_task_thresholds=task_cuts))


if __name__ == "__main__":
    main()
