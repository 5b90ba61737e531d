"""Task embeddings: which synthetic augmentation made a training pair (and "default" when unknown)."""

from __future__ import annotations

import torch
import torch.nn as nn

from genprop.tasks import Task


class TaskEmbedding(nn.Module):
    """A learned vector per task id (:class:`genprop.tasks.Task`: 0 default, 1 copy-and-paste, 2 mask-and-fill,
    3 colour fill).

    The vector enters the SCE (added to its time conditioning through a zero-initialised projection)
    and the MPD (through an ordinary projection). Dropping ids to ``Task.DEFAULT`` (used at inference when the
    task is unknown) is the training objective's job (``genprop.losses.drop_task_ids``), not the model's.

    Args:
        dim (int): embedding width.
        num_tasks (int, default len(Task)): number of task ids.
    """

    def __init__(self, dim: int, num_tasks: int = len(Task)):
        super().__init__()
        self.embedding = nn.Embedding(num_tasks, dim)

    def forward(self, task_ids: torch.Tensor) -> torch.Tensor:
        """(B,) long -> (B, dim)."""
        return self.embedding(task_ids)
