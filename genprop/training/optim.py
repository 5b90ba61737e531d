"""AdamW and the learning-rate schedule: linear warm-up, then cosine decay."""

from __future__ import annotations

import math

import torch

from genprop.training.config import TrainConfig


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup_steps`` (step 0 already trains at ``lr / warmup_steps``), then a
    cosine from 1 down to ``min_lr_ratio`` at ``max_steps``, flat after that.
    """
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# Parameters of the source-anchor gate (``GenPropModel.source_gate``) train at ``config.gate_lr_scale`` x lr.
GATE_PREFIX = "source_gate."


def make_optimizer(params: list[torch.nn.Parameter] | dict[str, torch.nn.Parameter], config: TrainConfig
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` and its warm-up + cosine schedule.

    Args:
        params (list[nn.Parameter] | dict[str, nn.Parameter]): the trainable parameters only; named ones put the
            source-anchor gate's in a group at ``config.gate_lr_scale`` times the learning rate.
        config (TrainConfig): lr, betas, weight decay and the schedule.
    """
    if isinstance(params, dict):
        gate = [p for n, p in params.items() if n.startswith(GATE_PREFIX)]
        rest = [p for n, p in params.items() if not n.startswith(GATE_PREFIX)]
        params = [{"params": rest}] + ([{"params": gate, "lr": config.lr * config.gate_lr_scale}] if gate else [])
    opt = torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config))
    return opt, sched
