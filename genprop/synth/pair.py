"""The routed training pair: what the SCE sees, what G is conditioned on, what it must produce."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Task names and ids; the ids equal genprop.models.task_embedding's (0 is the "default" task, never made here).
# Kept as plain constants so the synth package stays free of torch/diffusers imports (a test checks they agree).
TASK_COPY_PASTE = "copy_paste"
TASK_MASK_FILL = "mask_fill"
TASK_COLOUR_FILL = "color_fill"
TASK_IDS = {TASK_COPY_PASTE: 1, TASK_MASK_FILL: 2, TASK_COLOUR_FILL: 3}
# The paper's prompt for colour-fill pairs (tracking); the other tasks carry an empty prompt.
TRACK_PROMPT = "track colored regions"


@dataclass(frozen=True)
class SyntheticPair:
    """One routed training pair (Eq. 3 and the colour-fill note of Sec. 3.4).

    Attributes:
        task (str): ``"copy_paste"``, ``"mask_fill"`` or ``"color_fill"``.
        sce_video (np.ndarray): (T, H, W, 3) uint8, the video given to the Selective Content Encoder.
        target_video (np.ndarray): (T, H, W, 3) uint8, what G must produce; its frame 0 is G's first frame.
        mask (np.ndarray): (T, H, W) bool, the region the loss treats as edited.
        prompt (str): G's text prompt.
        object_id (int): the object of the source video the augmentation used (copy-and-paste: the donor's).
        info (dict): JSON-ready details (donor, scale, offset, colour, ...).
    """

    task: str
    sce_video: np.ndarray
    target_video: np.ndarray
    mask: np.ndarray
    prompt: str
    object_id: int
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASK_IDS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {sorted(TASK_IDS)}")
        t, h, w = self.mask.shape
        for name in ("sce_video", "target_video"):
            v = getattr(self, name)
            if v.shape != (t, h, w, 3) or v.dtype != np.uint8:
                raise ValueError(f"{name} must be ({t}, {h}, {w}, 3) uint8 like the mask, got {v.shape} {v.dtype}")

    @property
    def task_id(self) -> int:
        """The task embedding id (1 copy-and-paste, 2 mask-and-fill, 3 colour fill)."""
        return TASK_IDS[self.task]

    @property
    def cond_frame(self) -> np.ndarray:
        """(H, W, 3) uint8, G's first frame: always the target's first frame."""
        return self.target_video[0]
