"""Train (or go on training) GenProp on the procedural world over its frozen backbone, without Ray.

    python -m jobs.train_procedural_genprop --config procedural-genprop.yaml [--variant no-mpd] \
        --output models/procedural-genprop [--state-dir ~/.cache/genprop/genprop] [--max-steps N] [--max-minutes M] \
        [--machine cpu-2core] [--threads 1]

The ablations are the config file's variants (no-mpd, no-region-loss, no-colour-fill, ...).
Resumes wherever the previous call stopped (see ``genprop.training.procedural_genprop``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import sys

from genprop.training.procedural_genprop import GenPropRunConfig, train_genprop_run
from jobs.common import run_resumable_job


def main(argv: list[str] | None = None) -> int:
    return run_resumable_job(argv, "python -m jobs.train_procedural_genprop", __doc__, "procedural-genprop.yaml",
                             GenPropRunConfig, train_genprop_run, ("step", "samples", "skipped", "wall_s"))


if __name__ == "__main__":
    sys.exit(main())
