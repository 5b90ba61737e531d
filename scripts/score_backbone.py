"""Score a procedural backbone on fresh held-out seeds: PSNR of frames 2..T per sampling-step count, beside
"repeat the first frame" and the temporal mean, with a 95 % interval of the paired gain over repeat-first.

    python scripts/score_backbone.py [--model models/procedural-backbone/model] [--clips 256] [--steps 1 2 4]

The clips come from seeds ``VALIDATION_SEED_BASE + --offset`` on (default 10 000: apart from the 32 clips the
learning curve validates on, and from every training seed). Prints a markdown table (the one in docs/results.md).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    from genprop.backbone_quality import ClipSpec, generated_clips, procedural_clips, psnr_after_first
    from genprop.models.backbones.export import load_backbone
    from genprop.training.backbone_pretraining import VALIDATION_SEED_BASE

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/procedural-backbone/model")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--offset", type=int, default=10_000)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    first = VALIDATION_SEED_BASE + args.offset
    spec = ClipSpec(seeds=tuple(range(first, first + args.clips)))
    real = procedural_clips(spec)
    repeat = psnr_after_first(np.repeat(real[:, :1], real.shape[1], axis=1), real)
    mean = np.repeat(real.astype(np.float64).mean(axis=1, keepdims=True), real.shape[1], axis=1)
    mean = psnr_after_first(np.round(mean).astype(np.uint8), real)
    backbone = load_backbone(args.model).eval()
    print(f"{args.clips} clips, seeds {first}..{first + args.clips - 1}, sampling seed {args.seed}\n")
    print("| prediction | PSNR frames 2..T (dB) | gain over repeat-first (dB, 95 % interval) | clips better |")
    print("|---|---|---|---|")
    print(f"| repeat the first frame | {repeat.mean():.2f} | – | – |")
    print(f"| temporal mean (static oracle) | {mean.mean():.2f} | {(mean - repeat).mean():+.2f} | – |")
    for n in args.steps:
        model = psnr_after_first(generated_clips(backbone, real, num_steps=n, guidance_scale=1.0,
                                                 seed=args.seed), real)
        gain = model - repeat
        half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
        print(f"| backbone, {n} step{'s' if n > 1 else ''} | {model.mean():.2f} | {gain.mean():+.2f} "
              f"[{gain.mean() - half:+.2f}, {gain.mean() + half:+.2f}] | {int((gain > 0).sum())}/{len(gain)} |")


if __name__ == "__main__":
    main()
