"""Shard job: per-clip cost of each stage alone vs the Ray job's time per clip, and driver peak RSS vs videos.

    python bench/bench_shards.py [--videos 3] [--frames 64] [--size 256] [--out /tmp/bench-shards]

Stages alone (one process, no Ray): decode (frames + masks + crop), copy-and-paste, mask-and-fill, colour
fill, encode (latents + conditioning + masks with the tiny pixel-unshuffle Wan), write (tar blocks into a
shard). The job's time per clip excludes Ray start-up and listing; Ray overhead = job / sum of stages - 1.
Peak RSS: the job's driver (VmHWM) at N, 2N and 8N videos of ``--rss-frames`` frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(world: str, out: str, frames: int, size: int):
    from genprop.shards import ShardsConfig

    return ShardsConfig.tiny(input=world, output=out, frames=frames, height=size, width=size, samples_per_shard=4,
                             batch_size=1)


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
        video, masks, ids = read_clip(ds.record(row["video_id"]), row["indices"], config, rng)
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


def run_job(world: str, out: str, frames: int, size: int) -> dict:
    """The job in a fresh process (its own local Ray, 2 CPUs); returns its summary plus the driver's VmHWM."""
    import yaml

    from genprop.configs import to_dict

    cfg = out + ".yaml"  # frames and size differ from tiny.yaml: a config file beside the output
    with open(cfg, "w") as f:
        yaml.safe_dump({"shards": to_dict(dataclasses.replace(_config(world, out, frames, size), input="", output=""))},
                       f)
    code = ("import ray; from jobs.make_shards import main; ray.init(num_cpus=2, log_to_driver=False); "
            f"main(['--config', {cfg!r}, '--input', {world!r}, '--output', {out!r}]); "
            "print('VMHWM_KB', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(res.stdout[-3000:] + res.stderr[-3000:])
    summary = json.loads([line for line in res.stdout.splitlines() if line.startswith("{")][-1])
    summary["driver_peak_rss_mb"] = int(res.stdout.split("VMHWM_KB")[-1].split()[0]) / 1024
    summary["wall_s"] = wall
    return summary


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rss-videos", type=int, default=2)
    p.add_argument("--rss-frames", type=int, default=16)
    p.add_argument("--out", default="/tmp/bench-shards")
    args = p.parse_args()
    from genprop.datasets.procedural import WorldConfig, write_world

    os.makedirs(args.out, exist_ok=True)
    world = os.path.join(args.out, f"world-{args.videos}x{args.frames}x{args.size}")
    write_world(world, WorldConfig(videos=args.videos, frames=args.frames, height=args.size, width=args.size,
                                   tasks=()))
    costs = stage_costs(world, args.frames, args.size)
    out = os.path.join(args.out, f"job-{time.time_ns()}")
    job = run_job(world, out, args.frames, args.size)
    # the job's own clock (listing, planning, actor start-up, every sample, manifest); ray.init is outside it
    per_clip = job["seconds"] / job["samples_planned"]
    result = {"stages_s_per_clip": {k: round(v, 4) for k, v in costs.items()}, "job_s_per_clip": round(per_clip, 4),
              "job_clips_per_s": job["clips_per_s"], "ray_overhead": round(per_clip / costs["sum_stages"] - 1, 3)}
    rss = {}
    for mult in (1, 2, 8):
        n = args.rss_videos * mult
        w = os.path.join(args.out, f"world-{n}x{args.rss_frames}x{args.size}")
        write_world(w, WorldConfig(videos=n, frames=args.rss_frames, height=args.size, width=args.size, tasks=()))
        rss[n] = round(run_job(w, os.path.join(args.out, f"rss-{n}-{time.time_ns()}"), args.rss_frames,
                               args.size)["driver_peak_rss_mb"], 1)
    base = rss[args.rss_videos]
    result["driver_peak_rss_mb"] = rss
    result["rss_ratio_vs_base"] = {n: round(v / base, 3) for n, v in rss.items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
