"""The DAG's last stage: the run's summary — the metric table and where the HTML report is.

    python -m jobs.report --evaluation URL --out URL

Reads ``<evaluation>/metrics.json`` (written by ``jobs.evaluate``), writes ``<out>/summary.md`` (the
metric table, methods × metrics, and the report's URL) and ``<out>/summary.json``, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys

from genprop import storage
from genprop.report import METRICS
from genprop.report.table import metric_table
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
    table = metric_table(data["summary"], METRICS)
    cases = sorted({r["id"] for r in data["cases"]})
    text = (f"# GenProp run summary\n\n{len(cases)} benchmark cases; means over the cases where a metric is "
            f"known (n/a: unknown, e.g. CLIP without a CLIP model).\n\n{table}\n\nReport: {report}\n")
    storage.write_text(storage.join(args.out, "summary.md"), text)
    storage.write_text(storage.join(args.out, "summary.json"), json.dumps(
        {"cases": len(cases), "summary": data["summary"], "metrics": metrics_url, "report": report}, indent=1) + "\n")
    print(table)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
