"""Shard job: per-clip cost of each stage alone vs the Ray job's time per clip, and driver peak RSS vs videos.

    python bench/bench_shards.py [--videos 3] [--frames 64] [--size 256] [--rss-videos 2] [--rss-frames 16]
        [--rss-mults 1,2,8] [--rss-only] [--out /tmp/bench-shards]

Stages alone (one process, no Ray): decode (frames + masks + crop), copy-and-paste, mask-and-fill, colour
fill, encode (latents + conditioning + masks with the tiny pixel-unshuffle Wan), write (tar blocks into a
shard). The job (a fresh process with its own local 2-CPU Ray) is timed by its own clock (``ray.init`` is
outside it): end to end per clip, and in steady state (first to last sample reaching the driver, per clip);
the fixed cost is what the job took beyond ``clips`` steady-state clips. Every time is also given as a ratio
to the sum of the stages' costs (Ray overhead = ratio - 1).

Driver memory at N, 2N and 8N (``--rss-mults``) videos of ``--rss-frames`` frames, peaks sampled every 20 ms
by a thread in the job's process: RssAnon (private memory: what the driver itself holds), RssShmem (pages of
Ray's shared-memory object store the driver has touched while reading samples zero-copy: they belong to the
store, whose size bounds them) and VmHWM (the kernel's peak RSS, which counts both).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(world: str, out: str, frames: int, size: int, encode_actors: int = 1):
    from genprop.shards import ShardsConfig

    return ShardsConfig.tiny(input=world, output=out, frames=frames, height=size, width=size, samples_per_shard=4,
                             batch_size=1, encode_actors=encode_actors)


def stage_costs(world: str, frames: int, size: int) -> dict:
    from genprop.datasets import open_dataset
    from genprop.shards.clip import read_clip
    from genprop.shards.encode import SampleEncoder
    from genprop.shards.plan import describe_video, plan_samples
    from genprop.shards.tar_writer import ShardWriter
    from genprop.synth import SynthConfig, colour_fill, copy_paste, mask_fill

    config = _config(world, "/tmp/unused", frames, size)
    ds = open_dataset(world)
    rows = [describe_video(ds, v, config) for v in ds.videos()]
    plan = [p.to_row() for p in plan_samples(rows, config, 4)]
    enc = SampleEncoder(config)
    t = {"decode": [], "copy_paste": [], "mask_fill": [], "colour_fill": [], "encode": [], "write": []}
    mix = {"copy_paste": [], "mask_fill": [], "colour_fill": []}
    for row in plan:
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        video, masks, ids, _ = read_clip(ds.record(row["video_id"]), row["indices"], config, rng)
        t["decode"].append(time.perf_counter() - t0)
        m = masks[int(np.argmax(masks[:, 0].reshape(len(ids), -1).sum(1)))]
        for name, fn in (("copy_paste", lambda: copy_paste(video, video, m, rng, (0.5, 1.5))),
                         ("mask_fill", lambda: mask_fill(video, m, dilate=SynthConfig().dilate)),
                         ("colour_fill", lambda: colour_fill(video, m, (255, 0, 0)))):
            t0 = time.perf_counter()
            pair = fn()
            t[name].append(time.perf_counter() - t0)
            mix[name].append(pair)
        t0 = time.perf_counter()
        key, blocks = enc.encode(mix["mask_fill"][-1], row)
        t["encode"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with ShardWriter("/tmp/bench-shards-write.tar") as w:
            w.add(blocks)
            w.commit()
        t["write"].append(time.perf_counter() - t0)
    costs = {k: float(np.median(v)) for k, v in t.items()}
    # the job's augmentation mix: 0.5 / 0.375 / 0.125
    costs["synth_mix"] = 0.5 * costs["copy_paste"] + 0.375 * costs["mask_fill"] + 0.125 * costs["colour_fill"]
    # copy-and-paste decodes a donor clip too
    costs["sum_stages"] = costs["decode"] * 1.5 + costs["synth_mix"] + costs["encode"] + costs["write"]
    costs["sample_bytes"] = len(blocks)
    return costs


def encoder_startup(world: str, frames: int, size: int) -> float:
    """Seconds a fresh process takes to import the encoding actor's class and build it (backbone included).

    The job pays this once per actor, before its first sample; the per-clip stage costs leave it out.
    """
    code = ("import time; from bench.bench_shards import _config; "
            f"c = _config({world!r}, '/tmp/unused', {frames}, {size}); t = time.perf_counter(); "
            "from pipelines.encode_latents import EncodeSamples; EncodeSamples(c); "
            "print('STARTUP_S', time.perf_counter() - t)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return float(res.stdout.split("STARTUP_S")[-1].split()[0])


def _status_kb() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1])
    return out


def job_child(cfg: str, world: str, out: str) -> None:
    """Runs in the job's subprocess: local Ray (2 CPUs), the job, and a thread sampling the driver's memory.

    Prints one ``MEMORY {...}`` line: the peaks (kB) of RssAnon (private memory), RssShmem (pages of Ray's
    object store the driver touched), RssFile, VmRSS and VmHWM (the kernel's peak of VmRSS), and the same
    figures just before the job started (after ``ray.init``).
    """
    import threading

    import ray

    from jobs.make_shards import main as job_main

    peaks, stop = {}, threading.Event()

    def sample():
        while True:
            for k, v in _status_kb().items():
                peaks[k] = max(peaks.get(k, 0), v)
            if stop.wait(0.02):
                return

    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    before = _status_kb()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    rc = job_main(["--config", cfg, "--input", world, "--output", out])
    stop.set()
    thread.join()
    for k, v in _status_kb().items():
        peaks[k] = max(peaks.get(k, 0), v)
    print("MEMORY " + json.dumps({"peak": peaks, "before_job": before, "rc": rc}), flush=True)


def run_job(world: str, out: str, frames: int, size: int, encode_actors: int = 1) -> dict:
    """The job in a fresh process (its own local Ray, 2 CPUs); returns its summary plus the driver's memory."""
    import yaml

    from genprop.configs import to_dict

    cfg = out + ".yaml"  # frames and size differ from tiny.yaml: a config file beside the output
    with open(cfg, "w") as f:
        yaml.safe_dump({"shards": to_dict(dataclasses.replace(_config(world, out, frames, size, encode_actors),
                                                          input="", output=""))},
                       f)
    code = f"from bench.bench_shards import job_child; job_child({cfg!r}, {world!r}, {out!r})"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(res.stdout[-3000:] + res.stderr[-3000:])
    summary = json.loads([line for line in res.stdout.splitlines() if line.startswith("{")][-1])
    memory = json.loads(res.stdout.split("MEMORY ")[-1].splitlines()[0])
    summary["memory_mb"] = {k: round(v / 1024, 1) for k, v in memory["peak"].items()}
    summary["memory_before_job_mb"] = {k: round(v / 1024, 1) for k, v in memory["before_job"].items()}
    summary["wall_s"] = wall
    summary["progress"] = [line for line in res.stdout.splitlines() if line.startswith("[make_shards]")]
    return summary


def job_figures(job: dict, sum_stages: float, startup: float) -> dict:
    """The job's time per clip end to end and in steady state, its fixed cost, each as a ratio to the stages.

    ``startup``: the encoding actor's own start-up (imports, backbone) measured alone in a fresh process.
    """
    n, t = job["samples_planned"], job["timing_s"]
    per_clip = job["seconds"] / n
    # steady state: from the first sample reaching the driver to the last one, per clip (n - 1 intervals)
    steady = (t["last_sample"] - t["first_sample"]) / max(n - 1, 1)
    fixed = job["seconds"] - n * steady
    return {
        "clips": n, "job_seconds": job["seconds"], "job_clips_per_s": job["clips_per_s"],
        "ray_init_and_process_s": round(job["wall_s"] - job["seconds"], 2),
        "timing_s": {**t, "manifest_and_success": round(job["seconds"] - t["last_sample"], 3)},
        "end_to_end_s_per_clip": round(per_clip, 4), "steady_s_per_clip": round(steady, 4),
        # what n clips cost beyond n steady-state clips: listing, plan, actor start-up, the first sample's
        # latency through every stage, manifest and _SUCCESS
        "fixed_s": round(fixed, 2),
        "encoder_startup_alone_s": round(startup, 2),
        "fixed_beyond_encoder_startup_s": round(fixed - startup, 2),
        "ratio_end_to_end": round(per_clip / sum_stages, 3),
        "ratio_steady": round(steady / sum_stages, 3),
        # against a one-process pipeline that also builds its encoder once: (sum of stages x n + start-up)
        "ratio_end_to_end_vs_stages_plus_startup": round(job["seconds"] / (n * sum_stages + startup), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rss-videos", type=int, default=2)
    p.add_argument("--rss-frames", type=int, default=16)
    p.add_argument("--rss-mults", default="1,2,8", help="multiples of --rss-videos to measure memory at")
    p.add_argument("--rss-only", action="store_true", help="only the driver-memory series")
    p.add_argument("--encode-actors", type=int, default=1,
                   help="encoding actors in the job (each one runs torch on one thread: Ray sets OMP_NUM_THREADS "
                        "from its fractional CPU); 2 uses both cores of a 2-core machine")
    p.add_argument("--out", default="/tmp/bench-shards")
    args = p.parse_args()
    from genprop.datasets.procedural import WorldConfig, write_world

    os.makedirs(args.out, exist_ok=True)
    result = {}
    if not args.rss_only:
        world = os.path.join(args.out, f"world-{args.videos}x{args.frames}x{args.size}")
        write_world(world, WorldConfig(videos=args.videos, frames=args.frames, height=args.size, width=args.size,
                                       tasks=()))
        costs = stage_costs(world, args.frames, args.size)
        startup = encoder_startup(world, args.frames, args.size)
        job = run_job(world, os.path.join(args.out, f"job-{time.time_ns()}"), args.frames, args.size,
                      args.encode_actors)
        sum_stages = costs["sum_stages"]
        shares = {"decode_x1.5": costs["decode"] * 1.5, "synth_mix": costs["synth_mix"], "encode": costs["encode"],
                  "write": costs["write"]}
        result = {"stages_s_per_clip": {k: round(v, 4) for k, v in costs.items()},
                  "stage_share_of_sum": {k: round(v / sum_stages, 3) for k, v in shares.items()},
                  "job": job_figures(job, sum_stages, startup)}
    mem = {}
    for mult in (int(m) for m in args.rss_mults.split(",")):
        n = args.rss_videos * mult
        w = os.path.join(args.out, f"world-{n}x{args.rss_frames}x{args.size}")
        write_world(w, WorldConfig(videos=n, frames=args.rss_frames, height=args.size, width=args.size, tasks=()))
        out = os.path.join(args.out, f"rss-{n}-{time.time_ns()}")
        mem[n] = run_job(w, out, args.rss_frames, args.size, args.encode_actors)["memory_mb"]
        shutil.rmtree(out, ignore_errors=True)
    base = next(iter(mem.values()))
    result["driver_memory_mb"] = mem
    result["driver_memory_ratio_vs_base"] = {
        k: {n: round(m[k] / base[k], 3) for n, m in mem.items()} for k in ("VmHWM", "RssAnon")}
    result["driver_rss_shmem_growth_mb"] = {n: round(m["RssShmem"] - base["RssShmem"], 1) for n, m in mem.items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
