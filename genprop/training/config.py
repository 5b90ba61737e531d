"""The optimisation settings of a training run (model and data settings live in their own configs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from genprop.losses import RegionLossConfig


@dataclass(frozen=True)
class TrainConfig:
    """How to optimise.

    Args:
        objective (str, default "genprop"): ``"genprop"`` (Eq. 3 + the region-aware loss; trains SCE,
            MPD, task embeddings) or ``"i2v"`` (plain image-to-video training of the backbone itself).
        lr (float, default 5e-5): peak learning rate (the paper's).
        warmup_steps (int, default 500): linear warm-up from 0.
        max_steps (int, default 10000): cosine decay reaches ``min_lr_ratio * lr`` here.
        min_lr_ratio (float, default 0.0): floor of the cosine decay, as a fraction of ``lr``.
        weight_decay (float, default 0.0): AdamW weight decay.
        betas (tuple[float, float], default (0.9, 0.999)): AdamW betas.
        adam_eps (float, default 1e-8): AdamW's epsilon. Adam divides each gradient by its own running RMS, so an
            element whose gradient is zero in exact arithmetic (a bias a GroupNorm of one channel per group removes)
            steps on rounding noise; a larger epsilon keeps such elements still.
        tf32 (bool, default True): on CUDA, fp32 matmuls and convolutions (the SCE under ``fp32_sce_under_autocast``)
            on TF32 tensor cores: fp32 storage and accumulation, a 10-bit mantissa in the products (about 4x the
            fp32 SCE's speed, docs/scale.md); False keeps them in full fp32. CPU runs are unaffected.
        grad_clip (float, default 1e-3): gradient-norm threshold (the paper's 0.001; <= 0 disables).
        grad_accum (int, default 1): micro-batches per optimiser step.
        ema_decay (float, default 0.999): EMA of the trainable weights (0 disables).
        cond_drop_prob (float, default 0.1): probability of training a sample with G's condition
            replaced by the backbone's null condition, so classifier-free guidance works at inference.
        bf16 (bool, default True): bf16 autocast where the device is CUDA (CPU runs in fp32).
        gradient_checkpointing (bool, default False): activation checkpointing: each block of G, the SCE and the
            MPD keeps only its input and recomputes its activations in the backward pass (one more forward of every
            block for a fraction of the memory; docs/scale.md has the figures for the real backbones).
        seed (int, default 0): seeds noise, condition and task drops, with each sample's key and the step
            (``genprop.sample_draws``: the same draws on any number of workers).
        loss (RegionLossConfig): the region-aware loss weights (``genprop`` only).
    """

    objective: str = "genprop"
    lr: float = 5e-5
    warmup_steps: int = 500
    max_steps: int = 10000
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    tf32: bool = True
    grad_clip: float = 1e-3
    grad_accum: int = 1
    ema_decay: float = 0.999
    cond_drop_prob: float = 0.1
    bf16: bool = True
    gradient_checkpointing: bool = False
    seed: int = 0
    loss: RegionLossConfig = field(default_factory=RegionLossConfig)

    def __post_init__(self):
        if self.objective not in ("genprop", "i2v"):
            raise ValueError(f"objective must be 'genprop' or 'i2v', not {self.objective!r}")
        if self.grad_accum < 1 or self.max_steps < 1 or self.warmup_steps < 0:
            raise ValueError("grad_accum and max_steps must be >= 1 and warmup_steps >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @classmethod
    def tiny(cls, **overrides) -> "TrainConfig":
        """Settings that make a tiny model move within a few dozen CPU steps."""
        base = dict(lr=1e-3, warmup_steps=2, max_steps=50, grad_clip=1.0, ema_decay=0.9)
        return cls(**{**base, **overrides})
