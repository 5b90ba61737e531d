"""The one helper every GenProp injection goes through."""

from __future__ import annotations

import torch.nn as nn


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero in place and return it (ControlNet's ``zero_module``).

    A zero-initialised injection adds exactly 0 to the backbone's features, so an untrained GenProp
    reproduces the frozen backbone bit for bit.

    Args:
        module (nn.Module): the layer to zero.
    """
    for p in module.parameters():
        nn.init.zeros_(p)
    return module
