"""The README's before/after picture: one frame of a real-size clip, the input beside what `genprop propagate` gives.

Writes the project-made 1280x720 clip (``genprop.datasets.footage``), propagates its first-frame edit with the
shipped GenProp and default settings (as ``genprop propagate`` does, plus ``--raw-out``), and saves a frame late
in the clip as three panels: the input, the output (the composite: the input's own pixels outside the edit
region, outlined), and the model's frame upsampled without the composite, with a 2x crop of each below so the
detail kept (or lost) is visible.

    python scripts/make_before_after.py [--frame 80] [--out docs/before_after.jpg]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import cv2
import numpy as np

from genprop.datasets.footage import Footage, FootageConfig
from genprop.masks import write_image
from genprop.propagation import Propagator, load_model
from genprop.video_stream import VideoReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frame_at(url: str, index: int) -> np.ndarray:
    with VideoReader(url) as r:
        for f in r:
            if f.index == index:
                return f.image
    raise IndexError(f"{url} has no frame {index}")


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 14 * len(text) + 16), 34), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", type=int, default=80)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "before_after.jpg"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="before-after-") as tmp:
        files = Footage(FootageConfig(frames=args.frames)).write(tmp)
        outs = {n: os.path.join(tmp, f"{n}.mp4") for n in ("out", "mask", "raw")}
        Propagator(load_model(os.path.join(ROOT, "models", "procedural-genprop", "model"))).run_files(
            files.video, files.edited_first_frame, outs["out"], mask_out=outs["mask"], raw_out=outs["raw"])
        src, out, raw = (frame_at(u, args.frame) for u in (files.video, outs["out"], outs["raw"]))
        region = frame_at(outs["mask"], args.frame)[..., 0] >= 128
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outlined = cv2.drawContours(out.copy(), contours, -1, (255, 255, 0), 2)
    h, w = src.shape[:2]
    # the crop: the quarter-size window with the most detail among those the region does not touch
    windows = [(y, x) for y in range(0, h - h // 4 + 1, h // 8) for x in range(0, w - w // 4 + 1, w // 8)]
    y0, x0 = max(windows, key=lambda yx: (-region[yx[0]:yx[0] + h // 4, yx[1]:yx[1] + w // 4].sum(),
                                          float(src[yx[0]:yx[0] + h // 4, yx[1]:yx[1] + w // 4].std())))
    ys, xs = slice(y0, y0 + h // 4), slice(x0, x0 + w // 4)
    top = [label(cv2.resize(i, (w // 2, h // 2), interpolation=cv2.INTER_AREA), t) for i, t in
           ((src, f"input, frame {args.frame}"), (outlined, "genprop propagate (region outlined)"),
            (raw, "model frame upsampled (--composite none)"))]
    crops = [label(cv2.resize(i[ys, xs], (w // 2, h // 2), interpolation=cv2.INTER_NEAREST), "crop x2") for i in
             (src, out, raw)]
    write_image(args.out, np.vstack([np.hstack(top), np.hstack(crops)]))
    print(args.out)


if __name__ == "__main__":
    main()
