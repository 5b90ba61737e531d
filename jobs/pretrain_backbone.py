"""Pretrain (or go on pretraining) the procedural world's image-to-video backbone, without Ray.

    python -m jobs.pretrain_backbone --config procedural-backbone.yaml [--variant plain] \
        --output models/procedural-backbone [--state-dir ~/.cache/genprop/pretrain] [--max-steps N] [--max-minutes M] \
        [--machine cpu-2core] [--threads 1]

Resumes wherever the previous call stopped (see ``genprop.training.backbone_pretraining``). Runs the same on a
GPU box that has torch and diffusers but no Ray (``--device cuda``).
"""

from __future__ import annotations

import sys

from genprop.training.backbone_pretraining import PretrainConfig, pretrain
from jobs.common import run_resumable_job


def main(argv: list[str] | None = None) -> int:
    return run_resumable_job(argv, "python -m jobs.pretrain_backbone", __doc__, "procedural-backbone.yaml",
                             PretrainConfig, pretrain, ("step", "samples", "wall_s"))


if __name__ == "__main__":
    sys.exit(main())
