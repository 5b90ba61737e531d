"""What a trainable unit returns: tensors of their own, never views of a tensor inside the unit.

FSDP2 registers its pre-backward hook (which all-gathers the unit's parameters for its backward) on each tensor a
wrapped unit returns; an in-place op on a *view* output would bypass that hook and skip the all-gather. Reshapes
and slices at the end of a forward (a token grid unpatchified, a padded clip cropped, a 3-D ``nn.Linear``, whose
output is a view of its 2-D product) make views, so the SCE, the MPD and GenPropModel pass what they return
through :func:`own`, which copies a view (only a view) into a tensor of its own.
"""

from __future__ import annotations

import torch


def own(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself, or a copy of it when it is a view (``t._base`` set)."""
    return t.clone() if t._base is not None else t
