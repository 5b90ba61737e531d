"""Score procedural GenProp models and the classical baselines on fresh held-out cases: the table of docs/results.md.

    python scripts/score_genprop.py --model full=models/procedural-genprop/model \
        [--model no-mpd=RUN/model ...] [--videos 64] [--offset 10000] [--steps 2] [--json OUT.json]

Cases: one of each benchmark task (remove with shadows and reflections, replace, insert, background, track) per
scene, from scene seeds ``GENPROP_VALIDATION_SEED_BASE + --offset`` on (apart from the learning curve's
validation scenes and from every training seed). Each model is scored as its run validated it: the tasks its
augmentations trained get their embedding, the MPD's mask only if the run trained the MPD (its
``run_config.json``), cut at the checkpoint's calibrated threshold (``scripts/score_regions.py --write``; 0.5
without one). Prints markdown: the table, then the two floors as paired differences with 95 % intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASKS = ("remove", "replace", "insert", "background", "track")
BASELINES = ("identity", "flow_warp", "track_inpaint")
# (column, key pattern) of the table; {m} is the method
COLUMNS = (("removal PSNR", "remove_psnr_{m}"), ("removal effects PSNR", "remove_psnr_fx_{m}"),
           ("removal PSNR_m", "remove_psnr_m_{m}"), ("replace PSNR", "replace_psnr_{m}"),
           ("insert PSNR", "insert_psnr_{m}"), ("background PSNR", "background_psnr_{m}"),
           ("tracking IoU (obj+fx)", "track_iou_fx_{m}"))


def _run_settings(model_dir: str) -> tuple[set[str] | None, bool]:
    """(trained tasks, trains the MPD) of the run that exported ``model_dir``."""
    from genprop.configs import from_dict
    from genprop.training.procedural_genprop import GenPropRunConfig

    path = os.path.join(model_dir, "run_config.json")
    if not os.path.isfile(path):
        return None, True
    with open(path) as f:
        config = from_dict(GenPropRunConfig, json.load(f)["config"], where=path)
    return config.trained_tasks(), config.train.loss.mpd_weight > 0


def _interval(diff: np.ndarray, unit: str = "") -> str:
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return f"{diff.mean():+.3f}{unit} [{diff.mean() - half:+.3f}, {diff.mean() + half:+.3f}], better on " \
           f"{int((diff > 0).sum())}/{len(diff)} cases"


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.2f}" if abs(v) > 1.5 else f"{v:.3f}"


def main() -> None:
    from genprop.genprop_quality import (CaseSpec, case_scores, make_validation_cases, propagate_cases,
                                         reference_scores, task_id_for)
    from genprop.models import load_genprop
    from genprop.models.trained_clip import calibrated_threshold
    from genprop.training.procedural_genprop import GENPROP_VALIDATION_SEED_BASE

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="NAME=DIR (repeat)")
    p.add_argument("--videos", type=int, default=64)
    p.add_argument("--offset", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=2, help="sampling steps (the runs validate with 2)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write every per-case score here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    first = GENPROP_VALIDATION_SEED_BASE + args.offset
    cases = make_validation_cases(CaseSpec(seeds=tuple(range(first, first + args.videos)), tasks=TASKS))
    refs = [reference_scores(c) for c in cases]
    rows, thresholds = {}, {}
    for name, directory in (m.split("=", 1) for m in args.model):
        trained, mpd = _run_settings(directory)
        model = load_genprop(directory).eval()
        # each case cut at its task's calibrated value (the checkpoint's one cut where it has none per task)
        thresholds[name] = calibrated_threshold(model, task_id_for("remove", trained))
        rows[name] = [case_scores(c, frames, mask if mpd else None,
                                  calibrated_threshold(model, task_id_for(c.task, trained))) for c, frames, mask in
                      propagate_cases(model, cases, num_steps=args.steps, guidance_scale=1.0, seed=args.seed,
                                      trained_tasks=trained)]
        rows[name + " (MPD)"] = [{k.replace("_mpd", "_model"): v for k, v in r.items() if k.endswith("_mpd")}
                                 for r in rows[name]] if mpd else None

    def mean(rs, key):
        values = [r[key] for r in rs if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    counts = {t: sum(c.task == t for c in cases) for t in TASKS}
    print(f"{len(cases)} cases from scenes {first}..{first + args.videos - 1} "
          f"({', '.join(f'{t} {n}' for t, n in counts.items())}); {args.steps} sampling steps, seed {args.seed}\n")
    print("| method | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name, rs in rows.items():
        if rs is None:
            continue
        # GenProp's tracking is the painted change segmented from its frames; its MPD row is the MPD's mask
        keys = [k.format(m="model") if not k.startswith("track") else k.format(m="colour" if "(MPD)" not in name
                                                                                  else "model") for _, k in COLUMNS]
        print(f"| GenProp {name} | " + " | ".join(_fmt(mean(rs, k)) for k in keys) + " |")
    for m in BASELINES:
        # the track baseline is track_inpaint's tracker (the edit region carried by optical flow); flow_warp's is
        # the painted change segmented from its frames (what copying a flow anchor scores)
        vals = [_fmt(mean(refs, k.format(m=m))) for _, k in COLUMNS[:-1]]
        track = {"track_inpaint": "track_iou_fx_flow", "flow_warp": "track_iou_fx_flow_warp_colour"}.get(m)
        vals.append(_fmt(mean(refs, track)) if track else "–")
        print(f"| {m} | " + " | ".join(vals) + " |")
    print("| painted change of the true target (bound) | " + " | ".join("–" for _ in COLUMNS[:-1])
          + f" | {_fmt(mean(refs, 'track_iou_fx_colour_target'))} |")
    print("\nFloors, paired over cases (mean difference [95 % interval]):\n")
    for name, rs in rows.items():
        if rs is None or name.endswith("(MPD)"):
            continue
        rem = [(r["remove_psnr_model"], f["remove_psnr_identity"]) for r, f in zip(rs, refs) if "remove_psnr_model" in r]
        trk = [(r["track_iou_fx_colour"], f["track_iou_fx_flow"]) for r, f in zip(rs, refs) if "track_iou_fx_colour" in r]
        print(f"- {name}: removal PSNR − identity {_interval(np.array([a - b for a, b in rem]), ' dB')}; "
              f"tracking IoU (painted change) − track baseline {_interval(np.array([a - b for a, b in trk]))}")
        for m in ("flow_warp", "track_inpaint"):  # the removal goal
            d = np.array([r["remove_psnr_model"] - f[f"remove_psnr_{m}"] for r, f in zip(rs, refs)
                          if "remove_psnr_model" in r])
            print(f"  - removal PSNR − {m} {_interval(d, ' dB')}")
        mpd = rows.get(name + " (MPD)")
        if mpd:
            d = np.array([r["track_iou_fx_model"] - f["track_iou_fx_flow"] for r, f in zip(mpd, refs)
                          if "track_iou_fx_model" in r])
            print(f"  - tracking IoU (MPD) − track baseline {_interval(d)}")
            rec = [r["remove_recall_model"] for r in mpd if "remove_recall_model" in r]
            iou = [r["remove_iou_model"] for r in mpd if "remove_iou_model" in r]
            print(f"  - MPD on removal (mask ≥ {thresholds[name]:g}): recall {np.mean(rec):.3f}, IoU "
                  f"{np.mean(iou):.3f} against the removed object + effects")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": [c.case_id for c in cases], "references": refs,
                       "models": {k: v for k, v in rows.items() if v is not None}}, f)


if __name__ == "__main__":
    main()
