"""Task embeddings: which synthetic augmentation made a training pair (and "default" when unknown)."""

from __future__ import annotations

import torch
import torch.nn as nn

TASK_DEFAULT = 0  # used at inference when the task is unknown; trained by dropping task ids
TASK_COPY_PASTE = 1
TASK_MASK_FILL = 2
TASK_COLOR_FILL = 3
TASK_NAMES = {"default": TASK_DEFAULT, "copy_paste": TASK_COPY_PASTE, "mask_fill": TASK_MASK_FILL,
              "color_fill": TASK_COLOR_FILL}


class TaskEmbedding(nn.Module):
    """A learned vector per task id (0 default, 1 copy-and-paste, 2 mask-and-fill, 3 colour fill).

    The vector enters the SCE (added to its time conditioning through a zero-initialised projection)
    and the MPD (through an ordinary projection). Dropping ids to ``TASK_DEFAULT`` is the training
    objective's job (``genprop.losses.drop_task_ids``), not the model's.

    Args:
        dim (int): embedding width.
        num_tasks (int, default 4): number of task ids.
    """

    def __init__(self, dim: int, num_tasks: int = 4):
        super().__init__()
        self.embedding = nn.Embedding(num_tasks, dim)

    def forward(self, task_ids: torch.Tensor) -> torch.Tensor:
        """(B,) long -> (B, dim)."""
        return self.embedding(task_ids)
