"""Training throughput on Ray Train: samples/s and data-wait fraction for 1 and 2 CPU workers (tiny config),
and the two data paths alone (per-worker ranged sample reads vs ``ray.data.read_webdataset``).

    python bench/bench_train.py [--steps 20] [--out /tmp/bench-train]

Shards: the shard job's tiny config (procedural world, tiny Wan, 9-frame 32x32 clips), 8 clips.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time


def data_paths(shards_url: str, epochs: int) -> dict:
    """Samples/s of reading + decoding every sample ``epochs`` times through each data path (one reader)."""
    import ray

    from genprop.training.data import collate, decode_training_sample
    from genprop.training.global_batches import BatchLayout, GlobalBatchReader
    from genprop.training.sample_index import index_shards
    from genprop.training.shard_stream import list_shards

    shards = list_shards(shards_url)
    t0 = time.perf_counter()
    refs = index_shards(shards)
    reader = GlobalBatchReader(refs, 0, BatchLayout(1, 1, 1), 0, decode_training_sample, collate)
    for _ in range(len(refs) * epochs):
        reader.next()
    reader.close()
    own = len(refs) * epochs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = 0
    for _ in range(epochs):
        ds = ray.data.read_webdataset(shards, decoder=None)
        for row in ds.iter_rows():
            raw = {"__key__": row["__key__"], **{k: v for k, v in row.items() if not k.startswith("__")}}
            decode_training_sample(raw)
            n += 1
    rd = n / (time.perf_counter() - t0)
    return {"ranged_reads_samples_per_s": own, "ray_data_samples_per_s": rd, "samples": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="/tmp/bench-train")
    args = ap.parse_args()
    import ray

    from genprop.shards import ShardsConfig
    from genprop.training import TrainConfig
    from genprop.training.job_config import TrainJobConfig
    from pipelines.make_shards import make_shards
    from pipelines.train import train

    shutil.rmtree(args.out, ignore_errors=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    from genprop.datasets.procedural import WorldConfig

    shards = os.path.join(args.out, "shards")
    make_shards(ShardsConfig.tiny(output=shards, world=WorldConfig(videos=8, frames=9, height=32, width=32)))
    results = {"data_paths": data_paths(shards, epochs=5)}
    for workers in (1, 2):
        out = os.path.join(args.out, f"run-{workers}")
        job = TrainJobConfig.tiny(shards=shards, output=out, num_workers=workers,
                                  train=TrainConfig.tiny(max_steps=args.steps), checkpoint_every=args.steps,
                                  validate_every=0, batch_size=2)
        t0 = time.perf_counter()
        train(job)
        wall = time.perf_counter() - t0
        lines = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))][2:]  # after warm-up
        results[f"{workers}_workers"] = {
            "samples_per_s": statistics.median(m["samples_per_s"] for m in lines),
            "data_wait_frac_mean": statistics.mean(m["data_wait_frac"] for m in lines),
            "data_wait_frac_max": max(m["data_wait_frac"] for m in lines),
            "step_s": statistics.median(m["step_s"] for m in lines), "wall_s": wall}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
