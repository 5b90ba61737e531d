"""Train GenProp (or an I2V backbone) with Ray Train on shards made by make_shards.

    python -m jobs.train --config jobs/configs/tiny.yaml [--shards URL] [--output URL] [--max-steps N]
                         [--num-workers W] [--objective genprop|i2v]

Also ``genprop train ...``, and runnable under ``ray job submit`` (it joins the cluster in RAY_ADDRESS, or
starts a local Ray runtime). The config's ``train:`` section is the run; its ``shards:`` section (when present)
says which backbone and clip shape the shards must have, and where they are when ``--shards`` is not given.
Exit status: 0 done, 1 training failed (after Ray's restarts), 2 bad config or shards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from genprop.configs import ConfigError
from genprop.errors import DataError
from genprop.shards import ShardsConfig
from genprop.training.job_config import TrainJobConfig
from jobs.common import has_section, load_section, resolve_config, setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="tiny.yaml", help="YAML config (its train: section); default tiny.yaml")
    p.add_argument("--shards", default=None, help="shard output URL (default: the config's)")
    p.add_argument("--output", default=None, help="run output URL: checkpoints, metrics.jsonl, model/")
    p.add_argument("--max-steps", type=int, default=None, help="optimiser steps (also the end of the cosine)")
    p.add_argument("--num-workers", type=int, default=None, help="Ray Train workers")
    p.add_argument("--objective", choices=["genprop", "i2v"], default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    # 1. config: the train: section (+ flags); the shards: section names what the shards must be
    try:
        url = resolve_config(args.config)
        job = load_section(TrainJobConfig, url, "train",
                           overrides={"shards": args.shards, "output": args.output, "num_workers": args.num_workers})
        expected = load_section(ShardsConfig, url, "shards") if has_section(url, "shards") else None
        train_cfg = job.train
        if args.max_steps is not None:
            train_cfg = dataclasses.replace(train_cfg, max_steps=args.max_steps)
        if args.objective is not None:
            train_cfg = dataclasses.replace(train_cfg, objective=args.objective)
        job = dataclasses.replace(job, train=train_cfg, shards=job.shards or (expected.output if expected else ""))
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    if not job.shards or not job.output:
        print("train: a shards URL and an output URL are required (--shards/--output or the config)", file=sys.stderr)
        return 2
    import ray

    from pipelines.train import train

    if not ray.is_initialized():
        ray.init(log_to_driver=True)  # RAY_ADDRESS (set by `ray job submit`) or a local runtime
    try:
        summary = train(job, expected)
    except DataError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - Ray's TrainingFailedError wraps the worker's error
        print(f"train: training failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    m = summary["metrics"]
    print(f"train: {summary['steps']} steps, loss {m.get('loss', float('nan')):.4f}, "
          f"{m.get('samples_per_s', 0):.2f} samples/s, checkpoint {summary['checkpoint']}, model {summary['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
