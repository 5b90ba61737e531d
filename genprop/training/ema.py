"""Exponential moving average of the trainable weights (kept in fp32, on the weights' device)."""

from __future__ import annotations

import torch
import torch.nn as nn


class EMA:
    """EMA of a set of named parameters: ``shadow = decay * shadow + (1 - decay) * param``.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early
    weights (mostly initialisation) do not dominate a short run.

    Args:
        named_parameters (dict[str, nn.Parameter]): the trainable parameters, keyed as in the model's
            ``state_dict`` (so the EMA exports with ``save_pretrained``'s names).
        decay (float): the target decay.
    """

    def __init__(self, named_parameters: dict[str, nn.Parameter], decay: float):
        self.decay = decay
        self.params = dict(named_parameters)
        self.shadow = {k: p.detach().float().clone() for k, p in self.params.items()}
        self.num_updates = 0

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for k, p in self.params.items():
            self.shadow[k].mul_(d).add_(p.detach().float(), alpha=1 - d)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.shadow) - set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:5]}")
        self.num_updates = int(state["num_updates"])
        from genprop.training.fsdp import copy_into

        for k in self.shadow:
            copy_into(self.shadow[k], state["shadow"][k])

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged weights, each in its parameter's dtype."""
        return {k: self.shadow[k].to(self.params[k].dtype) for k in self.shadow}
