"""Train (or go on training) GenProp on the procedural world over its frozen backbone, without Ray.

    python -m jobs.train_procedural_genprop --config procedural-genprop.yaml --output models/procedural-genprop \
        [--state-dir ~/.cache/genprop/genprop] [--max-steps N] [--max-minutes M] [--machine cpu-2core] [--threads 1]

The ablations are configs: procedural-genprop-no-mpd.yaml, -no-region-loss.yaml, -no-colour-fill.yaml.
Resumes wherever the previous call stopped (see ``genprop.training.procedural_genprop``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from genprop import configs
from genprop.training.procedural_genprop import GenPropRunConfig, train_genprop_run
from jobs.common import resolve_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.train_procedural_genprop", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="procedural-genprop.yaml")
    p.add_argument("--output", required=True, help="local directory (model/, curve.jsonl, progress.json)")
    p.add_argument("--state-dir", default=None, help="optimiser state (default: <output>/../.state-<name>)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--machine", default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is far faster on a CPU shared with another run)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = configs.load(GenPropRunConfig, resolve_config(args.config))
    out = os.path.abspath(args.output)
    state = args.state_dir or os.path.join(os.path.dirname(out), f".state-{os.path.basename(out)}")
    progress = train_genprop_run(config, out, state, max_steps=args.max_steps, max_minutes=args.max_minutes,
                                 machine=args.machine, device=args.device)
    print(json.dumps({"step": progress["step"], "samples": progress["samples"], "skipped": progress["skipped"],
                      "wall_s": progress["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
