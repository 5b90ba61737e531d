"""The ``genprop`` command.

It lives in ``jobs/`` because several subcommands are the jobs themselves (``genprop train`` =
``python -m jobs.train``); the library below (``genprop/``) never imports ``jobs/`` or ``pipelines/``.
Each subcommand imports what it needs when it runs, so ``genprop --help`` stays fast and a
command never pays for another's dependencies.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (e.g. ``128x128``) into ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 128x128, not {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, not {text!r}")
    return h, w


def _cmd_world(args: argparse.Namespace) -> int:
    from genprop.datasets.procedural import WorldConfig, write_world

    h, w = args.size
    config = WorldConfig(videos=args.videos, frames=args.frames, height=h, width=w,
                         fps=args.fps, seed=args.seed)
    summary = write_world(args.out, config)
    print(f"wrote {len(summary['videos'])} videos and {len(summary['cases'])} cases to {args.out}")
    return 0


def _print_inspect_table(report: dict) -> None:
    print(f"format: {report['format']}  videos: {len(report['videos'])}  bad: {len(report['bad'])}")
    for v in report["videos"]:
        print(f"  {v['id']}: {v['frames']} frames {v['height']}x{v['width']} @ {v['fps']} fps, "
              f"objects {v['objects']}, {v['annotated_frames']} annotated frames")
    for b in report["bad"]:
        print(f"  BAD {b['id']}: {b['reason']}")


def _cmd_inspect(args: argparse.Namespace) -> int:
    from genprop.datasets import inspect_dataset
    from genprop.errors import DataError

    if args.verify:
        if args.ray:  # the same check on Ray Data (jobs/ and pipelines/ hold the Ray code)
            return run_job("jobs.verify_dataset", ["--input", args.url, "--format", args.format]
                           + (["--json"] if args.json else []))
        import time

        from genprop.datasets.verify import progress_line, verify_dataset
        from jobs.verify_dataset import print_report

        started, last = time.monotonic(), [None]

        def progress(done: int, total: int, bad: int) -> None:  # at most one line per 5 s, and the last
            now = time.monotonic()
            if last[0] is None or now - last[0] >= 5 or done == total:
                print(progress_line(done, total, bad, started), file=sys.stderr, flush=True)
                last[0] = now

        try:
            report = verify_dataset(args.url, format=args.format, progress=progress)
        except DataError as e:
            print(f"genprop inspect: {e}", file=sys.stderr)
            return 2
        print_report(report, args.json)
        return 1 if report["bad"] else 0
    try:
        report = inspect_dataset(args.url, format=args.format)
    except DataError as e:
        print(f"genprop inspect: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        _print_inspect_table(report)
    return 0


def _cmd_model_info(args: argparse.Namespace) -> int:
    from genprop.models.info import model_info

    counts = model_info(args.backbone, sce_blocks=args.sce_blocks)
    if args.json:
        print(json.dumps(counts))
    else:
        for k, v in counts.items():
            print(f"{k:>10}: {v:>15,d}  ({v / 1e9:.3f} B)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from jobs.dag import demo

    return demo(args.out, pretrained=args.pretrained)


def _cmd_s3_server(args: argparse.Namespace) -> int:
    from genprop.s3_server import serve

    return serve(port=args.port, buckets=args.bucket or ["genprop"])


def run_job(module: str, argv: Sequence[str]) -> int:
    """Run ``python -m <module> <argv>`` in this process (``genprop <stage>`` = the stage's job)."""
    import importlib

    return importlib.import_module(module).main(list(argv))


def add_job_command(sub, name: str, module: str, help: str) -> None:
    """A subcommand that is exactly ``python -m <module>``: every argument, ``--help`` included, goes to the job.

    The subparser takes a prefix character no argument uses, so it sees every option as a plain string.
    """
    p = sub.add_parser(name, add_help=False, prefix_chars="\x01", help=help)
    p.add_argument("job_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: run_job(module, args.job_args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genprop", description="Generative Video Propagation: carry a first-frame edit through a video.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("world", help="write the procedural video world (dataset + benchmark cases)")
    p.add_argument("--out", required=True, help="output URL (path, file://, s3://)")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=parse_size, default=(128, 128), help="HxW, default 128x128")
    p.add_argument("--fps", default="12", help="frame rate, a rational such as 12 or 30000/1001")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_world)

    p = sub.add_parser("inspect", help="check a dataset (YouTube-VOS, DAVIS, SA-V) and summarise it")
    p.add_argument("url")
    p.add_argument("--format", default="auto", choices=["auto", "youtube-vos", "davis", "sav"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verify", action="store_true",
                   help="decode every frame and annotation and report each bad item (exit 1 when any is bad)")
    p.add_argument("--ray", action="store_true", help="with --verify: run it as a Ray Data job (jobs.verify_dataset)")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("model-info", help="parameter counts of the real backbone configurations")
    p.add_argument("--backbone", required=True, choices=["svd", "wan"])
    p.add_argument("--sce-blocks", type=int, default=None, help="SCE depth (default: a quarter)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_model_info)

    add_job_command(sub, "shards", "jobs.make_shards",
                    "make training shards (python -m jobs.make_shards; `genprop shards --help`: options)")

    add_job_command(sub, "train", "jobs.train",
                    "train GenProp with Ray Train (python -m jobs.train; `genprop train --help`: options)")

    # Propagation of one video runs here, without Ray; the batch over a manifest is a Ray job.
    def _cmd_propagate(args: argparse.Namespace) -> int:
        from genprop.propagation.command import propagate_command

        return propagate_command(args)

    p = sub.add_parser("propagate", help="carry a first-frame edit through one video (no Ray)")
    from genprop.propagation.command import add_arguments as _add_propagate_arguments

    _add_propagate_arguments(p)
    p.set_defaults(func=_cmd_propagate)

    add_job_command(sub, "propagate-batch", "jobs.propagate",
                    "batch propagation over a manifest on Ray (= python -m jobs.propagate)")

    add_job_command(sub, "evaluate", "jobs.evaluate",
                    "metrics + baselines + HTML report over benchmark cases (= python -m jobs.evaluate)")

    add_job_command(sub, "dag", "jobs.dag", "run the DAG world -> shards -> train -> propagate -> evaluate -> "
                    "report, locally or as Ray jobs (= python -m jobs.dag; `genprop dag run --help`: options)")

    p = sub.add_parser("demo", help="the whole DAG on the embedded default (tiny.yaml, local Ray), then the "
                                    "metric table and the report's path")
    p.add_argument("--out", default="demo-out", help="output root URL (default demo-out)")
    p.add_argument("--pretrained", action="store_true",
                   help="propagate with the shipped GenProp weights (models/procedural-genprop) on held-out "
                        "procedural cases instead of training a tiny model (pretrained.yaml)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("s3-server", help="a local S3-compatible endpoint on 127.0.0.1 for development (moto)")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--bucket", action="append", default=None, help="bucket to create (repeatable; default genprop)")
    p.set_defaults(func=_cmd_s3_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
