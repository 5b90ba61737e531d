"""The routed training pair: what the SCE sees, what G is conditioned on, what it must produce."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genprop.tasks import AUGMENTATION_TASKS, Task

# The paper's prompt for colour-fill pairs (tracking); the other tasks carry an empty prompt.
TRACK_PROMPT = "track colored regions"


@dataclass(frozen=True)
class SyntheticPair:
    """One routed training pair (Eq. 3 and the colour-fill note of Sec. 3.4).

    Attributes:
        task (Task): the augmentation (``Task.COPY_PASTE``, ``Task.MASK_FILL`` or ``Task.COLOUR_FILL``).
        sce_video (np.ndarray): (T, H, W, 3) uint8, the video given to the Selective Content Encoder.
        target_video (np.ndarray): (T, H, W, 3) uint8, what G must produce; its frame 0 is G's first frame.
        mask (np.ndarray): (T, H, W) bool, the region the loss treats as edited.
        prompt (str): G's text prompt.
        object_id (int): the object of the source video the augmentation used (copy-and-paste: the donor's).
        info (dict): JSON-ready details (donor, scale, offset, colour, ...).
    """

    task: Task
    sce_video: np.ndarray
    target_video: np.ndarray
    mask: np.ndarray
    prompt: str
    object_id: int
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.task, Task) or self.task not in AUGMENTATION_TASKS:
            raise ValueError(f"task must be one of {[t.name for t in AUGMENTATION_TASKS]}, got {self.task!r}")
        t, h, w = self.mask.shape
        for name in ("sce_video", "target_video"):
            v = getattr(self, name)
            if v.shape != (t, h, w, 3) or v.dtype != np.uint8:
                raise ValueError(f"{name} must be ({t}, {h}, {w}, 3) uint8 like the mask, got {v.shape} {v.dtype}")

    @property
    def task_id(self) -> int:
        """The task embedding id (1 copy-and-paste, 2 mask-and-fill, 3 colour fill)."""
        return int(self.task)

    @property
    def cond_frame(self) -> np.ndarray:
        """(H, W, 3) uint8, G's first frame: always the target's first frame."""
        return self.target_video[0]
