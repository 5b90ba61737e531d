"""Pretraining a small image-to-video backbone on the procedural world, without Ray.

The same ``Trainer`` (objective ``i2v``) as the Ray Train job, fed with procedural clips rendered on the fly
(a clip costs ~1 ms to render, far less than a training step, so no shards are needed for this world), in the
resumable-run skeleton of ``resumable_run`` (it resumes wherever it stopped, on any machine): ``<output>/model``
is the EMA backbone as the adapter loads it (``save_backbone``; small, kept in git), ``<state>/state.pt`` the
optimiser state (large; kept outside git; without it a run resumes from the exported weights with a fresh
optimiser, whose warm-up runs again).

Training clips use scene seeds ``0, 1, 2, ...`` in order (step s uses seeds ``s*B .. s*B+B-1``), so a resumed
run continues the same stream; validation uses held-out seeds from ``VALIDATION_SEED_BASE`` on.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from genprop.backbone_quality import ClipSpec, procedural_clips, score_backbone, to_model
from genprop.models.backbones import WanBackboneConfig, build_backbone
from genprop.models.backbones.export import save_backbone
from genprop.training.config import TrainConfig
from genprop.training.resumable_run import ResumableRun
from genprop.training.trainer import Trainer

VALIDATION_SEED_BASE = 1_000_000


@dataclass(frozen=True)
class PretrainConfig:
    """A backbone pretraining run on the procedural world.

    Args:
        backbone (WanBackboneConfig): the DiT and its latent map (pixel-unshuffle for CPU).
        train (TrainConfig): objective ``i2v`` and its optimiser settings.
        frames, height, width (int): clip geometry.
        fps (str): the world's frame rate.
        batch_size (int, default 16): clips per step.
        val_clips (int, default 32): held-out clips scored at each validation.
        val_every (int, default 250): steps between validations (and checkpoints).
        val_steps (int, default 4): sampling steps when scoring (few steps: the conditional mean's blur).
    """

    backbone: WanBackboneConfig = field(default_factory=WanBackboneConfig.tiny)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(objective="i2v"))
    frames: int = 9
    height: int = 32
    width: int = 32
    fps: str = "12"
    batch_size: int = 16
    val_clips: int = 32
    val_every: int = 250
    val_steps: int = 4

    def __post_init__(self):
        if self.train.objective != "i2v":
            raise ValueError("backbone pretraining uses the i2v objective")

    @classmethod
    def tiny(cls) -> "PretrainConfig":
        return cls(train=TrainConfig.tiny(objective="i2v"), batch_size=2, val_clips=2, val_every=2, val_steps=1)

    def val_spec(self) -> ClipSpec:
        return ClipSpec(seeds=tuple(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + self.val_clips)),
                        frames=self.frames, height=self.height, width=self.width, fps=self.fps)

    def train_spec(self, step: int) -> ClipSpec:
        first = step * self.batch_size
        if first + self.batch_size > VALIDATION_SEED_BASE:
            raise ValueError(f"step {step}: training seeds would reach the held-out seeds")
        return ClipSpec(seeds=tuple(range(first, first + self.batch_size)), frames=self.frames,
                        height=self.height, width=self.width, fps=self.fps)


def load_run_backbone(config: PretrainConfig, output: str):
    """The run's backbone: its exported model when there is one, else a fresh build from the config."""
    model_dir = os.path.join(output, "model")
    if os.path.isfile(os.path.join(model_dir, "genprop_backbone.json")):
        return build_backbone(dataclasses.replace(config.backbone, pretrained=model_dir))
    return build_backbone(config.backbone)


def pretrain(config: PretrainConfig, output: str, state_dir: str, *, max_steps: int | None = None,
             max_minutes: float | None = None, machine: str = "cpu", device: str = "cpu",
             log: Callable[[str], None] = print) -> dict:
    """Train (or go on training) until ``max_steps`` total steps or ``max_minutes`` of this call.

    Args:
        config (PretrainConfig): the run.
        output (str): local directory with ``model/``, ``progress.json``, ``curve.jsonl``, ``metrics.jsonl``.
        state_dir (str): local directory for ``state.pt`` (optimiser etc.).
        max_steps (int | None): stop at this total step count (default ``config.train.max_steps``).
        max_minutes (float | None): stop after this many minutes of this call (checkpointing first).
        machine (str, default "cpu"): a label recorded with the wall time ("cpu-2core", "h200", ...).
        device (str, default "cpu"): torch device.
        log (Callable[[str], None]): progress lines.

    Returns:
        dict: the final ``progress.json`` content.
    """
    run = ResumableRun(output, state_dir, machine)
    max_steps = max_steps or config.train.max_steps
    # 1. backbone and trainer; resume the optimiser state when it belongs to this exact step
    backbone = load_run_backbone(config, output).to(device)
    trainer = Trainer(backbone, config.train)
    run.resume(trainer, device)
    run.progress["config"] = {"backbone": dataclasses.asdict(config.backbone),
                              "train": dataclasses.asdict(config.train), "batch_size": config.batch_size}
    log(f"[pretrain] start at step {trainer.step} ({run.progress['samples']} samples) on {machine}")

    def validate(weights: dict) -> dict:
        scored = copy.deepcopy(backbone)
        scored.load_state_dict(weights, strict=False)
        return score_backbone(scored.eval(), config.val_spec(), num_steps=config.val_steps, guidance_scale=1.0)

    def checkpoint() -> None:
        scores = run.checkpoint(trainer, validate, lambda tmp, weights: save_backbone(backbone, tmp, weights=weights))
        log(f"[pretrain] step {trainer.step}: PSNR model {scores['model']:.2f} dB, repeat-first "
            f"{scores['repeat_first']:.2f}, mean-frame {scores['mean_frame']:.2f}")

    # 2. one step of a deterministic clip stream (seeds s*B .. s*B+B-1), its metrics logged
    def step(s: int) -> None:
        t0 = time.monotonic()
        spec = config.train_spec(s)
        clips = to_model(procedural_clips(spec), device)
        with torch.no_grad():
            batch = {"target_latents": backbone.encode_video(clips),
                     "cond": backbone.encode_condition(clips[:, 0], None, num_frames=clips.shape[1]),
                     "keys": [f"seed{seed}" for seed in spec.seeds]}
        metrics = trainer.train_step([batch], data_wait_s=time.monotonic() - t0)
        run.progress["samples"] += config.batch_size
        run.log_step({k: metrics[k] for k in ("step", "loss", "lr", "grad_norm", "samples_per_s", "data_wait_frac")})

    return run.train(trainer, step, checkpoint, max_steps=max_steps, val_every=config.val_every,
                     max_minutes=max_minutes)
