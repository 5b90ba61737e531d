"""Write the procedural video world (dataset + benchmark cases) to a URL.

    python -m jobs.make_world --config world-tiny.yaml --out URL [--videos N] [--seed S] [--limit N]

The world is deterministic per seed and the writer resumes: finished videos and cases are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from genprop.datasets.procedural import WorldConfig, write_world
from jobs.common import load_section, resolve_config, setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.make_world", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="world-tiny.yaml", help="YAML config (its world: section, or WorldConfig fields at top level)")
    p.add_argument("--out", required=True, help="output URL")
    p.add_argument("--videos", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="write at most N videos (smoke runs)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    config = load_section(WorldConfig, resolve_config(args.config), "world",
                          overrides={"videos": args.videos, "frames": args.frames, "seed": args.seed})
    if args.limit is not None:
        config = dataclasses.replace(config, videos=min(config.videos, args.limit))
    summary = write_world(args.out, config)
    print(json.dumps({"out": args.out, "videos": len(summary["videos"]), "cases": len(summary["cases"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
