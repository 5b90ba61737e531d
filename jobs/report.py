"""The DAG's last stage: the run's summary — the metric table and where the HTML report is.

    python -m jobs.report --evaluation URL --out URL

Reads ``<evaluation>/metrics.json`` (written by ``jobs.evaluate``), writes ``<out>/summary.md`` (the metric
tables — by task, each metric averaged over the cases where it is defined with their count, and over all cases
for the metrics defined on every case — and the report's URL) and ``<out>/summary.json``, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys

from genprop import storage
from genprop.report import LABELS, METRICS
from genprop.report.table import IOU_NOTE, UNDEFINED, UNKNOWN, metric_table, task_table
from jobs.common import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.report", description=__doc__.splitlines()[0])
    p.add_argument("--evaluation", required=True, help="jobs.evaluate's output (metrics.json, report.html)")
    p.add_argument("--out", required=True, help="output URL (summary.md, summary.json)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    metrics_url = storage.join(args.evaluation, "metrics.json")
    try:
        data = json.loads(storage.read_text(metrics_url))
    except (FileNotFoundError, ValueError) as e:
        print(f"jobs.report: {metrics_url}: no readable metrics ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    report = storage.join(args.evaluation, "report.html")
    cases = sorted({r["id"] for r in data["cases"]})
    if "by_task" in data:
        by_task = data["by_task"]
        overall = [m for m in METRICS if any(m in v for v in data["summary"].values())]
        counts = ", ".join(f"{t} {e['cases']}" for t, e in by_task.items())
        table = (f"By task ({counts} cases; n: the cases a metric is defined on, (n=k) after a mean over fewer):\n\n"
                 f"{task_table(by_task, {**LABELS, **data.get('labels', {})})}\n\n{IOU_NOTE}\n\n"
                 f"Over all {len(cases)} cases (the metrics defined on every case):\n\n"
                 f"{metric_table(data['summary'], overall, data.get('counts'), len(cases))}")
        intro = (f"{len(cases)} benchmark cases; each metric is averaged over the cases where it is defined "
                 f"({UNDEFINED}: not defined for the method on the task; {UNKNOWN}: no value, e.g. CLIP without a "
                 "CLIP model).")
    else:  # a metrics.json without the tables by task: means over all cases
        table = metric_table(data["summary"], METRICS)
        intro = (f"{len(cases)} benchmark cases; means over the cases where a metric is known (n/a: unknown, "
                 "e.g. CLIP without a CLIP model).")
    text = f"# GenProp run summary\n\n{intro}\n\n{table}\n\nReport: {report}\n"
    storage.write_text(storage.join(args.out, "summary.md"), text)
    storage.write_text(storage.join(args.out, "summary.json"), json.dumps(
        {"cases": len(cases), "summary": data["summary"], "by_task": data.get("by_task"), "metrics": metrics_url,
         "report": report}, indent=1) + "\n")
    print(table)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
