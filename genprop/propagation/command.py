"""``genprop propagate``: one video, one edited first frame, no Ray."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from genprop.errors import GenPropError
from genprop.propagation.config import TASK_IDS, PropagationConfig, task_id


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``genprop propagate`` flags."""
    p.add_argument("--model", required=True, help="GenProp checkpoint directory (any URL)")
    p.add_argument("--video", required=True, help="the original video (any URL)")
    p.add_argument("--edited-first-frame", required=True, help="the edited first frame (PNG/JPEG, the video's size)")
    p.add_argument("--prompt", default=None, help="text prompt (Wan)")
    p.add_argument("--task", default="auto", choices=sorted(TASK_IDS),
                   help="task embedding: auto/edit = default, insert = copy-and-paste, remove = mask-and-fill, "
                        "track = colour fill")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the backbone's)")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the backbone's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output mp4 URL (input's frame count, fps and size)")
    p.add_argument("--mask-out", default=None, help="MPD mask video URL")
    p.add_argument("--track-out", default=None, help="colour-segmentation mask video URL (--task track)")
    p.add_argument("--window", type=int, default=0, help="frames per window (0: the backbone's clip length)")
    p.add_argument("--overlap", type=int, default=2, help="frames shared by consecutive windows")
    p.add_argument("--working-area", type=int, default=0, help="working pixels (0: the backbone's)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--decode-chunk-frames", type=int, default=8)
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--cpu-offload", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--lossless-output", action="store_true",
                   help="write the propagated video losslessly (qp 0, yuv444p) instead of at CRF 12")


def propagate_command(args: argparse.Namespace) -> int:
    """Run ``genprop propagate``; prints one JSON line (outputs, sizes, drift, peak memory)."""
    from genprop.propagation.propagate import Propagator, load_model

    try:
        config = PropagationConfig(working_area=args.working_area, window=args.window, overlap=args.overlap,
                                   num_steps=args.steps, guidance=args.guidance, seed=args.seed, dtype=args.dtype,
                                   decode_chunk_frames=args.decode_chunk_frames, vae_tiling=args.vae_tiling,
                                   cpu_offload=args.cpu_offload, device=args.device,
                                   lossless_output=args.lossless_output)
        propagator = Propagator(load_model(args.model), config)
        result = propagator.run_files(args.video, args.edited_first_frame, args.prompt, task_id(args.task))
        result.write(args.out, mask_out=args.mask_out, track_out=args.track_out, lossless=config.lossless_output)
    except (GenPropError, ValueError) as e:
        print(f"genprop propagate: {e}", file=sys.stderr)
        return 2
    t, h, w = result.frames.shape[:3]
    print(json.dumps({"out": args.out, "mask_out": args.mask_out, "frames": t, "height": h, "width": w,
                      "fps": str(result.fps), "work_size": list(result.work_size), "drift": result.drift,
                      "peak_memory": result.peak_memory, "config": dataclasses.asdict(config)}))
    return 0
