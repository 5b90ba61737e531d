"""Evaluate GenProp's predictions and the classical baselines on benchmark cases; write metrics.json and report.html.

    python -m jobs.evaluate --cases URL --predictions URL --out URL [--clip DIR] [--limit N] [--config FILE]

``--cases`` is a procedural world (or its ``cases/``); predictions are ``<predictions>/<case_id>.mp4``
(+ ``_mask.mp4``, and with ``propagate.write_raw`` ``_raw.mp4`` and the MPD's mask ``_mpd.mp4``), e.g. the output of
``jobs.propagate``. Each metric is averaged per task over the cases where it is defined (IoU on tracking cases,
effects PSNR on removals with an effect mask), with counts; ``metrics.json`` holds the per-case rows, ``by_task``
and, for the metrics defined on every case, ``summary`` and ``counts``. CLIP metrics need ``--clip`` (a local
``CLIPModel`` directory, or ``$GENPROP_CLIP_PATH``); without it they are null. Plain Python: the
baselines are cheap next to propagation, which is the distributed stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

from genprop import storage
from genprop.configs import ConfigError
from genprop.metrics import ClipScorer
from genprop.report import (LABELS, METHODS, METRICS, case_dirs, defined_metrics, load_case, run_methods, score,
                            summarise, write_report)
from genprop.report.plots import per_case_plot, task_means_plot
from genprop.report.table import TASK_COLUMNS
from jobs.common import load_section, resolve_config, setup_logging


@dataclass(frozen=True)
class EvaluateJobConfig:
    """The ``evaluate:`` section of a deployment YAML.

    Args:
        clip (str | None, default None): local ``CLIPModel`` directory for CLIP-T/CLIP-I (None = those are null,
            unless ``--clip`` or ``$GENPROP_CLIP_PATH`` gives one).
    """

    clip: str | None = None

    @classmethod
    def tiny(cls) -> "EvaluateJobConfig":
        return cls()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--cases", required=True, help="procedural world root or its cases/ directory")
    p.add_argument("--predictions", required=True, help="directory of <case_id>.mp4 (+ _mask.mp4)")
    p.add_argument("--out", required=True, help="output URL (metrics.json, report.html, report_files/)")
    p.add_argument("--clip", default=os.environ.get("GENPROP_CLIP_PATH"), help="local CLIPModel directory")
    p.add_argument("--limit", type=int, default=None, help="first N cases only (smoke runs)")
    p.add_argument("--config", default=None, help="deployment YAML (its evaluate: section); optional")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.config:
        try:
            job = load_section(EvaluateJobConfig, resolve_config(args.config), "evaluate")
        except (ConfigError, FileNotFoundError) as e:
            print(f"jobs.evaluate: {e}", file=sys.stderr)
            return 2
        args.clip = args.clip or job.clip
    start = time.perf_counter()
    dirs = case_dirs(args.cases)
    if not dirs:
        print(f"jobs.evaluate: {args.cases}: no cases (expected cases/<case_id>/case.json)", file=sys.stderr)
        return 2
    dirs = dirs[: args.limit] if args.limit is not None else dirs
    clip = ClipScorer.load(args.clip)
    cases, outputs, rows, defined = [], {}, [], {}
    for d in dirs:
        case = load_case(d)
        outs = run_methods(case, args.predictions)
        for method in METHODS:
            rows.append({"id": case["case_id"], "task": case["task"], "method": method,
                         **score(case, outs[method], clip, method)})
            defined[(case["case_id"], method)] = defined_metrics(case, method)
        cases.append(case)
        outputs[case["case_id"]] = outs
    evaluation = summarise(rows, defined)
    storage.write_text(storage.join(args.out, "metrics.json"), json.dumps(
        {"cases": rows, **evaluation, "labels": {m: LABELS.get(m, m) for m in METHODS}}, indent=1,
        allow_nan=False) + "\n")
    plots = {"mean_metrics.png": task_means_plot(evaluation["by_task"], TASK_COLUMNS, LABELS),
             "psnr_gt_per_case.png": per_case_plot(rows, "psnr_gt", METHODS, LABELS),
             "psnr_m_per_case.png": per_case_plot(rows, "psnr_m", METHODS, LABELS)}
    if "track" in evaluation["by_task"]:
        plots["iou_per_case.png"] = per_case_plot([r for r in rows if r["task"] == "track"], "iou", METHODS, LABELS)
    page = write_report(args.out, cases, outputs, rows, evaluation, METRICS, plots)
    means = {t: {LABELS.get(m, m): {k: round(v, 3) for k, v in s.items() if v is not None}
                 for m, s in e["summary"].items()} for t, e in evaluation["by_task"].items()}
    print(json.dumps({"cases": len(cases), "metrics": storage.join(args.out, "metrics.json"), "report": page,
                      "seconds": round(time.perf_counter() - start, 2), "by_task": means}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
