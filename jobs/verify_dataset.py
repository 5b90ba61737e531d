"""Verify a dataset on Ray Data: every frame and every annotation of every video decoded, each bad item reported.

    python -m jobs.verify_dataset --input URL [--format auto|youtube-vos|davis|sav] [--actors N] [--json]

The same check as ``genprop inspect URL --verify``, spread over an actor pool (a real dataset in object storage);
``genprop inspect URL --verify --ray`` runs this job. Exits 1 when any item is bad, 2 on a dataset it cannot open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from genprop.errors import DataError
from jobs.common import setup_logging


def print_report(report: dict, as_json: bool) -> None:
    """The report as one JSON object, or a summary line and one line per bad item."""
    if as_json:
        print(json.dumps(report))
        return
    print(f"format: {report['format']}  videos: {report['videos']}  frames: {report['frames']}  "
          f"annotations: {report['annotations']}  bad items: {len(report['bad'])}")
    for b in report["bad"]:
        print(f"  BAD {b['id']}: {b['reason']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.verify_dataset", description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="the dataset root (path, file://, s3://)")
    p.add_argument("--format", default="auto", choices=["auto", "youtube-vos", "davis", "sav"])
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--num-cpus-per-actor", type=float, default=0.5)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    import ray

    from pipelines.verify_dataset import verify_on_ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
    try:
        report = verify_on_ray(args.input, args.format, actors=args.actors, num_cpus=args.num_cpus_per_actor,
                               echo=lambda line: print(line, file=sys.stderr, flush=True))
    except DataError as e:
        print(f"jobs.verify_dataset: {e}", file=sys.stderr)
        return 2
    print_report(report, args.json)
    return 1 if report["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
