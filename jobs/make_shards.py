"""Make training shards: videos under a URL -> routed synthetic pairs -> latents + conditioning -> WebDataset tars.

    python -m jobs.make_shards --config jobs/configs/tiny.yaml [--input URL] [--output URL] [--limit N]

Also ``genprop shards ...``, and runnable under ``ray job submit`` (it joins the cluster in RAY_ADDRESS, or
starts a local Ray runtime). Reruns resume; a complete output is left alone; another config is refused.
Exit status: 0 done (bad input is skipped and counted), 1 some samples failed unexpectedly, 2 bad config/output.
"""

from __future__ import annotations

import argparse
import json
import sys

from genprop.configs import ConfigError
from genprop.shards import ConfigMismatchError, ShardsConfig
from jobs.common import load_section, resolve_config, setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.make_shards", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="tiny.yaml", help="YAML config (its shards: section, or ShardsConfig fields at top level); default tiny.yaml")
    p.add_argument("--input", default=None, help="dataset root URL (default: the config's; '' = procedural world)")
    p.add_argument("--output", default=None, help="output URL for shards, manifest and _SUCCESS")
    p.add_argument("--limit", type=int, default=None, help="use only the first N videos (smoke runs)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        config = load_section(ShardsConfig, resolve_config(args.config), "shards",
                              overrides={"input": args.input, "output": args.output, "limit": args.limit,
                                         "seed": args.seed})
    except (ConfigError, FileNotFoundError) as e:
        print(f"make_shards: {e}", file=sys.stderr)
        return 2
    if not config.output:
        print("make_shards: an output URL is required (--output or output: in the config)", file=sys.stderr)
        return 2
    import ray

    from pipelines.make_shards import make_shards

    if not ray.is_initialized():
        ray.init(log_to_driver=args.verbose)  # RAY_ADDRESS (set by `ray job submit`) or a local runtime
    try:
        summary = make_shards(config)
    except ConfigMismatchError as e:
        print(f"make_shards: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    print(f"make_shards: {summary['videos_in']} videos in ({summary.get('videos_skipped', 0)} skipped), "
          f"{summary['samples_out']} samples out, {summary['samples_skipped']} samples skipped, "
          f"{summary['samples_failed']} failed, {summary.get('donors_replaced', 0)} donors replaced, "
          f"{summary['shards']} shards, {summary['bytes']} bytes, "
          f"{summary['clips_per_s']} clips/s")
    for problem in summary.get("problems", []):  # one line each: the video (and sample), and the whole reason
        key = f" sample {problem['key']}" if problem["key"] else ""
        print(f"make_shards: {problem['status']} {problem['kind']} {problem['video_id']}{key}: {problem['reason']}")
    return 1 if summary["samples_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
