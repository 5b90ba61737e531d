"""Pretrain (or go on pretraining) the procedural world's image-to-video backbone, without Ray.

    python -m jobs.pretrain_backbone --config procedural-backbone.yaml --output models/procedural-backbone \
        [--state-dir ~/.cache/genprop/pretrain] [--max-steps N] [--max-minutes M] [--machine cpu-2core] [--threads 1]

Resumes wherever the previous call stopped (see ``genprop.training.backbone_pretraining``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from genprop import configs
from genprop.training.backbone_pretraining import PretrainConfig, pretrain
from jobs.common import resolve_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.pretrain_backbone", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="procedural-backbone.yaml")
    p.add_argument("--output", required=True, help="local directory (model/, curve.jsonl, progress.json)")
    p.add_argument("--state-dir", default=None, help="optimiser state (default: <output>/../.state-<name>)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--machine", default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is far faster on a CPU shared with other work)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = configs.load(PretrainConfig, resolve_config(args.config))
    out = os.path.abspath(args.output)
    state = args.state_dir or os.path.join(os.path.dirname(out), f".state-{os.path.basename(out)}")
    progress = pretrain(config, out, state, max_steps=args.max_steps, max_minutes=args.max_minutes,
                        machine=args.machine, device=args.device)
    print(json.dumps({"step": progress["step"], "samples": progress["samples"], "wall_s": progress["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
