"""Pretrain (or go on pretraining) the procedural world's image-to-video backbone, without Ray.

    python -m jobs.pretrain_backbone --config procedural-backbone.yaml --output models/procedural-backbone \
        [--state-dir ~/.cache/genprop/pretrain] [--max-steps N] [--max-minutes M] [--machine cpu-2core] [--threads 1]

Resumes wherever the previous call stopped (see ``genprop.training.backbone_pretraining``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import json
import sys

from genprop import configs
from genprop.training.backbone_pretraining import PretrainConfig, pretrain
from jobs.common import resolve_config, resumable_run_dirs, resumable_run_parser


def main(argv: list[str] | None = None) -> int:
    parser = resumable_run_parser("python -m jobs.pretrain_backbone", __doc__.splitlines()[0], "procedural-backbone.yaml")
    args = parser.parse_args(argv)
    out, state = resumable_run_dirs(args)
    config = configs.load(PretrainConfig, resolve_config(args.config))
    progress = pretrain(config, out, state, max_steps=args.max_steps, max_minutes=args.max_minutes,
                        machine=args.machine, device=args.device)
    print(json.dumps({"step": progress["step"], "samples": progress["samples"], "wall_s": progress["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
