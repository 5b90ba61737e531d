"""Benchmark: `genprop propagate` on real-size footage — time by stage, against a plain transcode, and peak RSS.

On project-made 1280x720 H.264 clips (``genprop.datasets.footage``: camera motion, sensor noise,
audio, bt709) the shipped GenProp propagates the planted first-frame edit with default settings, as
``genprop propagate`` runs it. Each measurement runs in a fresh process, so its peak RSS (VmHWM)
is its own:

- ``transcode``: the same clip decoded and re-encoded with the propagation's own reader and writer
  (CRF 12, tags, audio copy): the cost of decoding plus encoding alone;
- ``propagate``: ``genprop propagate`` with default flags (model loading included), its seconds split by stage;
- the same at a longer clip (memory must stay flat with the length), and at other frame sizes (the
  fit of the per-row memory formula that ``pipelines.propagate`` declares to Ray).

    python bench/bench_propagate.py [--frames 300] [--long-frames 1000] [--out docs/runs/bench-propagate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "procedural-genprop", "model")


def peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def child_transcode(video: str, out: str) -> dict:
    from genprop.video_stream import VideoReader
    from genprop.video_writer import VideoWriter

    t0 = time.perf_counter()
    decode = 0.0
    with VideoReader(video) as reader:
        info = reader.info
        with VideoWriter(out, info.fps, info.width, info.height, like=info, audio_from=reader.local_path) as w:
            it = iter(reader)
            while True:
                t = time.perf_counter()
                f = next(it, None)
                decode += time.perf_counter() - t
                if f is None:
                    break
                w.write(f.image, f.pts)
    return {"seconds": round(time.perf_counter() - t0, 3), "decode_wait_s": round(decode, 3), "rss": peak_rss()}


def child_propagate(video: str, edited: str, out: str) -> dict:
    """``genprop propagate`` exactly as a user runs it (default flags; --quiet so the JSON is all it prints)."""
    import contextlib
    import io

    from jobs.cli import main

    t0 = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["propagate", "--model", MODEL, "--video", video, "--edited-first-frame", edited, "--out", out,
                   "--quiet"])
    if rc:
        raise SystemExit(f"genprop propagate exited {rc}")
    stats = json.loads(buf.getvalue().strip().splitlines()[-1])
    return {"seconds": round(time.perf_counter() - t0, 3), "stages": stats["seconds"], "window": stats["window"],
            "work_size": stats["work_size"], "rss": peak_rss()}


def run_child(*args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def make_clip(directory: str, frames: int, height: int = 720, width: int = 1280):
    from genprop.datasets.footage import Footage, FootageConfig

    return Footage(FootageConfig(height=height, width=width, frames=frames)).write(directory)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300, help="frames of the main clip (10 s at 29.97 fps)")
    p.add_argument("--short-frames", type=int, default=100)
    p.add_argument("--long-frames", type=int, default=1000)
    p.add_argument("--fit-frames", type=int, default=30, help="frames of the clips for the memory formula")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "runs", "bench-propagate.json"))
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_transcode(*rest) if kind == "transcode" else child_propagate(*rest)))
        return
    result = {"machine": f"{os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d"), "model": "procedural-genprop"}
    with tempfile.TemporaryDirectory(prefix="bench-propagate-") as tmp:
        # 1. the main clip: transcode vs propagate (alternating order once each way would double the cost;
        #    the transcode runs first and the propagation right after, on the same file)
        clip = make_clip(os.path.join(tmp, "main"), args.frames)
        tr = run_child("transcode", clip.video, os.path.join(tmp, "tr.mp4"))
        pr = run_child("propagate", clip.video, clip.edited_first_frame, os.path.join(tmp, "pr.mp4"))
        result["main"] = {"frames": args.frames, "size": "1280x720", "transcode": tr, "propagate": pr,
                          "ratio": round(pr["seconds"] / tr["seconds"], 3)}
        # 2. memory against length
        rows = {}
        for n in (args.short_frames, args.long_frames):
            c = make_clip(os.path.join(tmp, f"len{n}"), n)
            rows[n] = run_child("propagate", c.video, c.edited_first_frame, os.path.join(tmp, f"len{n}.mp4"))
        result["length"] = {str(n): {"seconds": r["seconds"], "rss": r["rss"]} for n, r in rows.items()}
        result["length"]["rss_ratio"] = round(rows[args.long_frames]["rss"] / rows[args.short_frames]["rss"], 3)
        # 3. memory against frame size (window fixed by the model): the per-row formula's fit
        fit = []
        for h, w in ((360, 640), (720, 1280), (1080, 1920)):
            c = make_clip(os.path.join(tmp, f"fit{h}"), args.fit_frames, h, w)
            r = run_child("propagate", c.video, c.edited_first_frame, os.path.join(tmp, f"fit{h}.mp4"))
            fit.append({"height": h, "width": w, "window": r["window"], "rss": r["rss"]})
        xs = [f["height"] * f["width"] * (f["window"] + 2) for f in fit]
        ys = [f["rss"] for f in fit]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        result["memory_fit"] = {"rows": fit, "per_window_pixel": round(slope, 2),
                                "base_bytes": int(my - slope * mx)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    m = result["main"]
    print(f"main clip {m['frames']} frames 1280x720: transcode {m['transcode']['seconds']} s, propagate "
          f"{m['propagate']['seconds']} s ({m['ratio']}x), stages {m['propagate']['stages']}, peak RSS "
          f"{m['propagate']['rss'] / 2**20:.0f} MiB")
    print(f"peak RSS {args.short_frames} -> {args.long_frames} frames: {result['length']['rss_ratio']}x")
    print(f"memory fit: {result['memory_fit']}")


if __name__ == "__main__":
    main()
