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


def make_optimizer(groups: list[dict], config: TrainConfig
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over parameter groups and its warm-up + cosine schedule.

    Args:
        groups (list[dict]): ``{"params": [...], "lr_scale": s}`` each (the model's ``parameter_groups``); a group
            trains at ``s * config.lr`` on the same schedule.
        config (TrainConfig): lr, betas, weight decay and the schedule.
    """
    param_groups = [{"params": g["params"], "lr": config.lr * g.get("lr_scale", 1.0)} for g in groups]
    opt = torch.optim.AdamW(param_groups, lr=config.lr, betas=tuple(config.betas), eps=config.adam_eps,
                            weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config))
    return opt, sched
