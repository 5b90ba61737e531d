"""Plot procedural GenProp learning curves (several runs, e.g. the full model and its ablations) into one PNG,
and print a markdown table of each run's last validation.

    python scripts/plot_genprop_curve.py --runs models/procedural-genprop models/procedural-genprop-no-mpd \
        [--png docs/genprop_curve.png] [--all]

Reads ``<run>/curve.jsonl`` (one row per validation: step, samples, wall seconds per machine, and the scores of
``genprop.genprop_quality`` on held-out cases). Left: removal PSNR of frames 2..T against the exact target, with
the identity (original video) and classical track-and-inpaint references as horizontal lines. Right: tracking
IoU against the object with its effects (the painted change, solid; the MPD's mask, dotted) with the optical-flow
baseline.
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = (("remove_psnr_model", "removal PSNR", "{:.2f}"), ("remove_psnr_identity", "identity", "{:.2f}"),
           ("remove_psnr_track_inpaint", "track+inpaint", "{:.2f}"),
           ("remove_psnr_region_model", "removal PSNR in region", "{:.2f}"),
           ("remove_psnr_region_track_inpaint", "track+inpaint in region", "{:.2f}"),
           ("track_iou_colour", "track IoU colour", "{:.3f}"), ("track_iou_mpd", "track IoU MPD", "{:.3f}"),
           ("track_iou_flow", "track IoU flow", "{:.3f}"), ("track_iou_fx_colour", "IoU colour, +effects", "{:.3f}"),
           ("track_iou_fx_flow", "IoU flow, +effects", "{:.3f}"))


def _fmt(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "–" if value is None else fmt.format(value)


def _row(name: str, r: dict) -> str:
    wall = ", ".join(f"{v:.0f} {k}" for k, v in r["wall_s"].items())
    cells = [name, str(r["step"]), str(r["samples"]), wall] + [_fmt(r, k, f) for k, _, f in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=["models/procedural-genprop"])
    p.add_argument("--png", default="docs/genprop_curve.png")
    p.add_argument("--all", action="store_true", help="a table row per validation, not only the last")
    args = p.parse_args()
    runs = {os.path.basename(os.path.normpath(r)): [json.loads(line) for line in open(os.path.join(r, "curve.jsonl"))]
            for r in args.runs}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, rows) in enumerate(runs.items()):
        c, samples = colours[i % len(colours)], [r["samples"] for r in rows]
        left.plot(samples, [r.get("remove_psnr_model") for r in rows], "o-", color=c, label=name, markersize=3)
        right.plot(samples, [r.get("track_iou_fx_colour") for r in rows], "o-", color=c, label=name, markersize=3)
        if any(r.get("track_iou_fx_mpd") is not None for r in rows):
            right.plot(samples, [r.get("track_iou_fx_mpd") for r in rows], ":", color=c, label=f"{name} (MPD)")
    first = next(iter(runs.values()))[-1]  # the references do not depend on the run
    for ax, key, label, style in ((left, "remove_psnr_identity", "identity (original video)", "--"),
                                  (left, "remove_psnr_track_inpaint", "flow track + inpaint", "-."),
                                  (right, "track_iou_fx_flow", "flow tracking", "--")):
        if first.get(key) is not None:
            ax.axhline(first[key], color="grey", linestyle=style, linewidth=1, label=label)
    left.set_ylabel("PSNR of frames 2..T vs target (dB)")
    left.set_title("Removal (held-out procedural cases)")
    right.set_ylabel("IoU of frames 2..T vs object + effects")
    right.set_title("Tracking (colour fill; dotted: MPD mask)")
    for ax in (left, right):
        ax.set_xlabel("training samples")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    fig.savefig(args.png)
    print("| run | step | samples | wall (s, machine) | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    print("|" + "---|" * (4 + len(COLUMNS)))
    for name, rows in runs.items():
        for r in rows if args.all else rows[-1:]:
            print(_row(name, r))


if __name__ == "__main__":
    main()
