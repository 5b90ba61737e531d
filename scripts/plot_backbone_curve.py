"""Plot the procedural backbone's learning curve into docs/ (PNG + a markdown table on stdout).

    python scripts/plot_backbone_curve.py [--run models/procedural-backbone] [--png docs/backbone_curve.png]
        [--also docs/runs/other-curve.jsonl:label ...]

Reads ``<run>/curve.jsonl`` (one row per validation: step, samples, wall seconds per machine, and mean PSNR of
frames 2..T for the model, "repeat the first frame" and the clip's temporal mean on held-out seeds).
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="models/procedural-backbone")
    p.add_argument("--png", default="docs/backbone_curve.png")
    p.add_argument("--also", nargs="*", default=[], metavar="CURVE.jsonl:LABEL",
                   help="other runs' curves to draw beside (the model line only)")
    args = p.parse_args()
    rows = [json.loads(line) for line in open(os.path.join(args.run, "curve.jsonl"))]
    samples = [r["samples"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for key, label, style in (("model", "backbone (4 steps, no CFG)", "o-"),
                              ("repeat_first", "repeat the first frame", "--"),
                              ("mean_frame", "temporal mean (static oracle)", ":")):
        ax.plot(samples, [r[key] for r in rows], style, label=label, markersize=3)
    for spec in args.also:
        path, _, label = spec.partition(":")
        other = [json.loads(line) for line in open(path)]
        ax.plot([r["samples"] for r in other], [r["model"] for r in other], "x-", label=label or path,
                markersize=3, alpha=0.7)
    ax.set_xlabel("training samples (clips)")
    ax.set_ylabel("PSNR of frames 2..T (dB)")
    ax.set_title("Procedural backbone: validation on held-out seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    fig.savefig(args.png)
    print("| step | samples | wall (s, machine) | model | repeat first | mean frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        wall = ", ".join(f"{v:.0f} {k}" for k, v in r["wall_s"].items())
        print(f"| {r['step']} | {r['samples']} | {wall} | {r['model']:.2f} | {r['repeat_first']:.2f} | "
              f"{r['mean_frame']:.2f} |")


if __name__ == "__main__":
    main()
