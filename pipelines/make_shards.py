"""The shard dataflow: list (tasks) -> plan (driver) -> decode + synth (tasks) -> encode (actor pool) -> tars (driver).

    summary = make_shards(ShardsConfig.tiny(input="s3://bucket/world", output="s3://bucket/shards"))

Shard membership comes from the plan (sorted inputs + seed). Ray Data runs the heavy per-sample work with
``preserve_order``, so samples reach the driver in plan order and each shard streams into a local temporary
tar that is published in one atomic write when its last sample arrives: the driver holds one block of samples
(zero-copy views into Ray's object store, no prefetch), a shard is visible only when complete, and a rerun
skips every shard whose manifest part exists. Listing uses plain Ray tasks, so the job runs one Ray Data
execution (each execution costs seconds of start-up). When decode + synth and the encoding actor ask for the
same resources (CPU configs) Ray Data fuses them into the actor; with a GPU per actor they stay separate.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import ray

from genprop import storage
from genprop.datasets.procedural import write_world
from genprop.shards import ShardOutput, ShardsConfig, ShardWriter, estimate_sample_bytes, plan_samples
from genprop.shards.manifest import manifest_table, parquet_bytes, read_manifest, video_rows
from pipelines.encode_latents import EncodeSamples
from pipelines.list_videos import list_videos
from pipelines.make_pairs import make_pairs

logger = logging.getLogger(__name__)


class InjectedFailure(RuntimeError):
    """Raised by the ``fail_after_shards`` test hook."""


def samples_per_shard(config: ShardsConfig) -> int:
    """``config.samples_per_shard``, or the shard target size over the estimated sample size."""
    if config.samples_per_shard is not None:
        return max(1, int(config.samples_per_shard))
    return max(1, config.shard_target_bytes // estimate_sample_bytes(config))


def _size(url: str) -> int:
    fs, path = storage.filesystem(url)
    return int(fs.size(path))


def _progress(msg: str) -> None:
    print(f"[make_shards] {msg}", flush=True)


def ordered_samples(ds):
    """The rows of ``ds`` in order, each with ``tar`` a zero-copy view (``pyarrow.Buffer``) into its block.

    Whole blocks are fetched one at a time with no prefetch and the sample bytes are never copied into the
    driver's own memory; the consumer drops each row before asking for the next, so once a block's rows are
    consumed nothing references it and the object store can free it.
    """
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
        tar = table.column("tar")
        fields = table.drop_columns(["tar"]).to_pylist()
        for i, row in enumerate(fields):
            row["tar"] = tar[i].as_buffer()
            yield row
            del row
        del table, tar, fields


def write_pending_shards(stream, pending: dict[int, int], output: ShardOutput, h: str, fail_after: int | None,
                 stats: dict) -> None:
    """Write the pending shards from the ordered sample stream (plan order)."""
    writer, shard, rows, written = None, None, [], 0
    try:
        for r in stream:
            s, pos = int(r["shard"]), int(r["position"])
            if s != shard:
                if writer is not None or pos != 0 or s not in pending:
                    raise RuntimeError(f"sample ({s}, {pos}) out of plan order (shard {shard} still open)")
                writer, shard, rows = ShardWriter(output.shard_url(s)), s, []
            blocks = r["tar"] if r["status"] == "ok" else b""
            if blocks:
                writer.add(blocks)
            if fail_after is not None and written >= fail_after:  # test hook: die with a half-written shard
                raise InjectedFailure(f"fail_after_shards={fail_after}: failing inside shard {s} on purpose")
            rows.append({"kind": "sample", "source": r["source"], "video_id": r["video_id"], "key": r["key"],
                         "shard": s, "position": pos, "status": r["status"], "reason": r["reason"],
                         "task": r["task"], "object_id": int(r["object_id"]), "start": int(r["start"]),
                         "bytes": len(blocks), "config_hash": h})
            for d in json.loads(r.get("donor_skips") or "[]"):  # a donor replaced: its skip, for it alone
                rows.append({"kind": "donor", "source": r["source"], "video_id": d["video_id"], "key": r["key"],
                             "shard": s, "position": pos, "status": "skipped", "reason": d["reason"],
                             "task": r["task"], "config_hash": h})
            stats["samples_" + r["status"]] += 1
            stats["t_last_sample"] = time.monotonic()
            stats.setdefault("t_first_sample", stats["t_last_sample"])
            del r, blocks  # no reference to the sample's block while the next one is fetched
            if pos == pending[s] - 1:  # the shard's last planned sample
                size = writer.commit()
                storage.write_bytes(output.part_url(s), parquet_bytes(manifest_table(rows)))
                writer.close()
                writer, shard, written = None, None, written + 1
                stats["shards_written"] += 1
                stats["bytes_written"] += size
                elapsed = time.monotonic() - stats["t0"]
                done = stats["samples_ok"] + stats["samples_skipped"] + stats["samples_failed"]
                _progress(f"shard {s} written ({size / 1e6:.2f} MB); {stats['shards_written']}/{len(pending)} "
                          f"shards this run, {done} samples, {done / max(elapsed, 1e-9):.2f} clips/s")
    finally:
        if writer is not None:
            writer.close()  # an unfinished shard is never published


def make_shards(config: ShardsConfig) -> dict:
    """Run the whole job (resuming where a previous run of the same config stopped).

    Args:
        config (ShardsConfig): the job config; ``output`` is required.

    Returns:
        dict: the summary also written to ``_SUCCESS`` (videos in and skipped, samples out, skipped and failed,
        ``problems``: every row that is not ok with its video id, sample key, status and whole reason, so the
        counts and the reasons agree; shards, bytes, clips/s, ``shards_written`` by this run).

    Raises:
        ConfigMismatchError: the output holds shards of another config.
    """
    t0 = time.monotonic()
    # Ray workers may run in another directory: resolve relative local paths on the driver.
    config = dataclasses.replace(config, output=storage.absolute(config.output),
                                 input=storage.absolute(config.input) if config.input else config.input)
    output = ShardOutput(config.output)
    h = output.claim(config)
    done = output.complete(h)
    if done is not None:
        _progress(f"{output.url} is complete for config {h}; nothing to do")
        return {**done, "shards_written": 0, "bytes_written": 0}
    url = config.input_url()
    if not config.input:
        _progress(f"writing the procedural world to {url}")
        write_world(url, config.world)
    # 1. list and describe the videos; 2. plan on the driver
    listing = list_videos(config, url)
    per_shard = samples_per_shard(config)
    plan = plan_samples(listing, config, per_shard)
    n_shards = (len(plan) + per_shard - 1) // per_shard
    finished = output.done_shards()
    todo = [p for p in plan if p.shard not in finished]
    pending: dict[int, int] = {}
    for p in todo:
        pending[p.shard] = pending.get(p.shard, 0) + 1
    stats = {"t0": t0, "samples_ok": 0, "samples_skipped": 0, "samples_failed": 0, "shards_written": 0,
             "bytes_written": 0, "t_planned": time.monotonic()}
    _progress(f"{len(listing)} videos, {len(plan)} samples planned in {n_shards} shards of {per_shard}; "
              f"{len(finished & set(range(n_shards)))} already done, {len(pending)} to write")
    # 3. decode + synth (tasks) -> encode (actor pool, backbone loaded once per actor) -> ordered stream
    if todo:
        ctx = ray.data.DataContext.get_current()
        saved_order, ctx.execution_options.preserve_order = ctx.execution_options.preserve_order, True
        items = [{"plan": json.dumps(p.to_row())} for p in todo]
        ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // config.batch_size)))
        ds = ds.map_batches(make_pairs, batch_size=config.batch_size, num_cpus=config.pair_num_cpus,
                            fn_kwargs={"url": url, "config": config})
        ds = ds.map_batches(EncodeSamples, fn_constructor_kwargs={"config": config}, batch_size=config.batch_size,
                            compute=ray.data.ActorPoolStrategy(size=config.encode_actors),
                            num_cpus=config.encode_num_cpus,
                            num_gpus=config.encode_num_gpus or None)
        try:
            write_pending_shards(ordered_samples(ds), pending, output, h, config.fail_after_shards, stats)
        finally:
            ctx.execution_options.preserve_order = saved_order
    stats["t_stream_end"] = time.monotonic()
    # 4. the manifest (every shard's rows + one row per video), then _SUCCESS last
    samples = []
    for s in range(n_shards):
        samples += read_manifest(storage.read_bytes(output.part_url(s))).to_pylist()
    rows = video_rows(listing, [r for r in samples if r["kind"] == "sample"], h) + samples
    storage.write_bytes(output.manifest_url, parquet_bytes(manifest_table(rows)))
    samples = [r for r in samples if r["kind"] == "sample"]  # the parts also hold donor rows
    elapsed = time.monotonic() - t0
    # every row that is not ok, with its whole reason (which names the file); counts come from the same rows
    problems = [{"kind": r["kind"], "video_id": r["video_id"], "key": r.get("key", ""), "status": r["status"],
                 "reason": r["reason"] or r["status"]} for r in rows if r["status"] != "ok"]
    summary = {
        "config_hash": h, "output": output.url, "videos_in": len(listing),
        "videos_ok": sum(r["kind"] == "video" and r["status"] == "ok" for r in rows),
        "samples_planned": len(plan), "samples_out": sum(r["status"] == "ok" for r in samples),
        "samples_skipped": sum(r["status"] == "skipped" for r in samples),
        "samples_failed": sum(r["status"] == "failed" for r in samples),
        "videos_skipped": sum(p["kind"] == "video" for p in problems),
        "donors_replaced": sum(p["kind"] == "donor" for p in problems), "problems": problems,
        "shards": n_shards,
        "bytes": sum(_size(output.shard_url(s)) for s in range(n_shards)),
        "shards_written": stats["shards_written"], "bytes_written": stats["bytes_written"],
        "seconds": round(elapsed, 3),
        # seconds from the start to: the plan, the first and the last sample reaching the driver, the end of
        # the Ray Data execution (benchmarks split fixed cost from steady state with these)
        "timing_s": {k: round(stats.get("t_" + k, t0) - t0, 3)
                     for k in ("planned", "first_sample", "last_sample", "stream_end")},
        "clips_per_s": round((stats["samples_ok"] + stats["samples_skipped"] + stats["samples_failed"])
                             / max(elapsed, 1e-9), 4),
    }
    storage.write_text(output.success_url, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
