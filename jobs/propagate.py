"""Batch propagation over a manifest on Ray Data.

    python -m jobs.propagate --config propagate-tiny.yaml --manifest URL --output URL [--model URL] [--limit N]
    python -m jobs.propagate --config tiny.yaml --cases WORLD --output URL [--model URL] [--limit N]

``--cases`` runs a procedural world's benchmark cases (the DAG's propagate stage): the manifest is built
from ``<world>/cases`` and kept as ``<output>/_manifest.jsonl``.

Writes ``<output>/<id>.mp4`` and ``<id>_mask.mp4`` (the edit region) per row (``<id>_track.mp4`` for colour
fill; ``<id>_raw.mp4`` and ``<id>_mpd.mp4`` with ``write_raw``), skips rows already done, records bad rows with
a one-line reason, logs rows done / total with an ETA, and ends with ``<output>/_summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field

from genprop import storage
from genprop.configs import ConfigError
from genprop.dag.cases import cases_manifest
from genprop.errors import DataError
from genprop.propagation.config import PropagationConfig
from genprop.propagation.manifest import read_manifest, row_problem
from jobs.common import load_section, resolve_config, setup_logging


@dataclass(frozen=True)
class PropagateJobConfig:
    """The batch job's settings.

    Args:
        model (str | None, default None): checkpoint directory URL; None = an untrained tiny Wan (smoke runs).
        propagation (PropagationConfig): how each video is propagated.
        actors (int, default 1): actor-pool size (one model per actor).
        num_cpus_per_actor (float, default 0.5): CPUs per actor.
        num_gpus_per_actor (float, default 1.0): GPUs per actor where the cluster has GPUs.
        decode_timeout_s (float, default 120): the longest wait for one decoded frame.
        write_raw (bool, default False): also write each row's model output without the composite
            (``<id>_raw.mp4``) and the MPD's mask (``<id>_mpd.mp4``), which evaluation scores beside the composite.
    """

    model: str | None = None
    propagation: PropagationConfig = field(default_factory=PropagationConfig)
    actors: int = 1
    num_cpus_per_actor: float = 0.5
    num_gpus_per_actor: float = 1.0
    decode_timeout_s: float = 120.0
    write_raw: bool = False

    @classmethod
    def tiny(cls) -> "PropagateJobConfig":
        return cls(propagation=PropagationConfig.tiny())


def _window(config: PropagateJobConfig) -> int:
    """The window the rows will run with (for their declared memory): the configured one, else the checkpoint's."""
    if config.propagation.window or not config.model:
        return config.propagation.window
    from genprop.models.trained_clip import CLIP_NAME, TrainedClip

    url = storage.join(config.model, CLIP_NAME)
    if not storage.exists(url):
        return 0
    try:
        return TrainedClip.from_dict(json.loads(storage.read_text(url))).frames
    except (TypeError, ValueError, KeyError):
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.propagate", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="propagate-tiny.yaml",
                   help="YAML config (its propagate: section, or PropagateJobConfig fields at top level)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="CSV, JSONL or Parquet: id, video, edited_first_frame, prompt, task")
    src.add_argument("--cases", help="a procedural world (or its cases/): propagate its benchmark cases")
    p.add_argument("--output", required=True, help="output URL")
    p.add_argument("--model", default=None, help="checkpoint directory (overrides the config)")
    p.add_argument("--limit", type=int, default=None, help="first N manifest rows only (smoke runs)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        config = load_section(PropagateJobConfig, resolve_config(args.config), "propagate",
                              overrides={"model": args.model})
    except (ConfigError, FileNotFoundError) as e:
        print(f"jobs.propagate: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    if args.cases:
        args.manifest = storage.join(args.output, "_manifest.jsonl")
        rows = cases_manifest(args.cases)
        if not rows:
            print(f"jobs.propagate: {args.cases}: no cases (expected cases/<case_id>/case.json)", file=sys.stderr)
            return 2
        storage.write_text(args.manifest, "".join(json.dumps(r) + "\n" for r in rows))
    try:
        rows = read_manifest(args.manifest)
    except DataError as e:
        print(f"jobs.propagate: {e}", file=sys.stderr)
        return 2
    if args.limit is not None:
        rows = rows[: args.limit]

    import ray

    from pipelines.propagate import is_done, propagate_rows

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
    # 1. checks that need no decoding, and rows already done
    results, todo, seen = [], [], set()
    for row in rows:
        problem = row_problem(row, seen)
        if problem:
            results.append({"id": row["id"], "status": "error", "reason": problem})
        elif is_done(args.output, row["id"]):
            results.append({"id": row["id"], "status": "skipped", "reason": "already done"})
        else:
            todo.append(row)
    print(f"propagate: {len(rows)} rows, {len(todo)} to run, "
          f"{sum(r['status'] == 'skipped' for r in results)} already done", file=sys.stderr, flush=True)
    # 2. the actor pool
    results += propagate_rows(todo, model_url=config.model, config=config.propagation, output=args.output,
                              actors=config.actors, num_cpus=config.num_cpus_per_actor,
                              num_gpus=config.num_gpus_per_actor, decode_timeout_s=config.decode_timeout_s,
                              write_raw=config.write_raw, window=_window(config),
                              echo=lambda line: print(line, file=sys.stderr, flush=True))
    # 3. summary
    order = {r["id"]: i for i, r in enumerate(rows)}
    results.sort(key=lambda r: order.get(r["id"], len(order)))
    count = {s: sum(r["status"] == s for r in results) for s in ("done", "skipped", "error")}
    summary = {"manifest": args.manifest, "output": args.output, "rows": len(rows), **count,
               "seconds": round(time.perf_counter() - start, 2), "config": dataclasses.asdict(config),
               "errors": [{"id": r["id"], "reason": r["reason"]} for r in results if r["status"] == "error"],
               "results": results}
    storage.write_text(storage.join(args.output, "_summary.json"), json.dumps(summary, indent=1, default=str) + "\n")
    print(json.dumps({k: summary[k] for k in ("rows", "done", "skipped", "error", "seconds", "errors")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
