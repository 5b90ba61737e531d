"""Train (or go on training) GenProp on the procedural world over its frozen backbone, without Ray.

    python -m jobs.train_procedural_genprop --config procedural-genprop.yaml --output models/procedural-genprop \
        [--state-dir ~/.cache/genprop/genprop] [--max-steps N] [--max-minutes M] [--machine cpu-2core] [--threads 1]

The ablations are configs: procedural-genprop-no-mpd.yaml, -no-region-loss.yaml, -no-colour-fill.yaml.
Resumes wherever the previous call stopped (see ``genprop.training.procedural_genprop``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import json
import sys

from genprop import configs
from genprop.training.procedural_genprop import GenPropRunConfig, train_genprop_run
from jobs.common import resolve_config, resumable_run_dirs, resumable_run_parser


def main(argv: list[str] | None = None) -> int:
    parser = resumable_run_parser("python -m jobs.train_procedural_genprop", __doc__.splitlines()[0], "procedural-genprop.yaml")
    args = parser.parse_args(argv)
    out, state = resumable_run_dirs(args)
    config = configs.load(GenPropRunConfig, resolve_config(args.config))
    progress = train_genprop_run(config, out, state, max_steps=args.max_steps, max_minutes=args.max_minutes,
                                 machine=args.machine, device=args.device)
    print(json.dumps({"step": progress["step"], "samples": progress["samples"], "skipped": progress["skipped"],
                      "wall_s": progress["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
