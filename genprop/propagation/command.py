"""``genprop propagate``: one video, one edited first frame, no Ray."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from genprop.errors import GenPropError
from genprop.propagation.config import COMPOSITES, OUTPUT_MODES, PropagationConfig
from genprop.tasks import CLI_NAMES, Task


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``genprop propagate`` flags."""
    p.add_argument("--model", required=True, help="GenProp checkpoint directory (any URL)")
    p.add_argument("--video", required=True, help="the original video (any URL)")
    p.add_argument("--edited-first-frame", required=True, help="the edited first frame (PNG/JPEG, the video's size)")
    p.add_argument("--prompt", default=None, help="text prompt (Wan)")
    p.add_argument("--task", default="auto", choices=CLI_NAMES,
                   help="task embedding: auto/edit = default, insert = copy-and-paste, remove = mask-and-fill, "
                        "track = colour fill")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the backbone's)")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the backbone's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output mp4 URL (the input's frames, timestamps, size, colour tags, "
                                                "rotation and audio)")
    p.add_argument("--mask-out", default=None, help="the edit region per frame as a grey mask video (255 = edited)")
    p.add_argument("--track-out", default=None, help="colour-segmentation mask video URL (--task track)")
    p.add_argument("--raw-out", default=None, help="the model's frames upsampled, without the composite")
    p.add_argument("--mpd-out", default=None, help="the MPD's soft mask video")
    p.add_argument("--composite", default="auto", choices=list(COMPOSITES),
                   help="outside the edit keep the input's own pixels, with the edit region from the model's "
                        "frames (diff) or its MPD (mpd; auto: the MPD where the checkpoint's validation shows it "
                        "better); none: the model's frames upsampled")
    p.add_argument("--window", type=int, default=0,
                   help="frames per window (0: the length the model was trained on)")
    p.add_argument("--overlap", type=int, default=2, help="frames shared by consecutive windows")
    p.add_argument("--working-area", type=int, default=0,
                   help="working pixels, aspect kept (0: the area the model was trained at)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--scheduler", choices=("auto", "flow_match_euler", "unipc"), default=None,
                   help="Wan's sampler scheduler (default: the model's; auto = its pipeline folder's own)")
    p.add_argument("--decode-chunk-size", type=int, default=None,
                   help="frames per SVD VAE decoder call (the pipeline's decode_chunk_size; default the model's, 14)")
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--cpu-offload", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--output-mode", default="crf", choices=list(OUTPUT_MODES),
                   help="crf: H.264 at --crf; lossless: qp 0 yuv444p; rgb-lossless: libx264rgb qp 0 (exact RGB)")
    p.add_argument("--crf", type=int, default=12, help="x264 CRF of --output-mode crf")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: on the CPU half the cores, leaving the rest to decoding and encoding)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def propagate_command(args: argparse.Namespace) -> int:
    """Run ``genprop propagate``; progress on stderr, then one JSON line (outputs, geometry, drift, peak memory)."""
    import torch

    from genprop.propagation.memory import resolve_device
    from genprop.propagation.propagate import Propagator, load_model

    if args.threads or resolve_device(args.device).type == "cpu":
        # decoding and encoding run beside the model (the decoder thread, x264's threads): a model that takes
        # every core contends with them (measured on 2 cores, 720p: 1 thread 4.3 s of model time, 2 threads 5.7 s)
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) // 2))
    try:
        config = PropagationConfig(working_area=args.working_area, window=args.window, overlap=args.overlap,
                                   num_steps=args.steps, guidance=args.guidance, seed=args.seed, dtype=args.dtype,
                                   decode_chunk_size=args.decode_chunk_size, scheduler=args.scheduler, vae_tiling=args.vae_tiling,
                                   cpu_offload=args.cpu_offload, device=args.device, output_mode=args.output_mode,
                                   crf=args.crf, composite=args.composite)
        propagator = Propagator(load_model(args.model), config)
        stats = propagator.run_files(args.video, args.edited_first_frame, args.out, prompt=args.prompt,
                                     task=int(Task.from_cli(args.task)), seed=args.seed, mask_out=args.mask_out,
                                     raw_out=args.raw_out, mpd_out=args.mpd_out, track_out=args.track_out,
                                     progress=True, quiet=args.quiet)
    except (GenPropError, ValueError) as e:
        print(f"genprop propagate: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "mask_out": args.mask_out, "window": propagator.window, **stats,
                      "config": dataclasses.asdict(config)}))
    return 0
