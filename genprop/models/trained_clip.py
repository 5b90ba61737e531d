"""What a checkpoint was trained on, and what its backbone can take: the clip record and positional capacity.

A GenProp checkpoint carries ``genprop_clip.json`` beside its weights: the clip length, frame size
and frame rate of its training clips, and the backbone's positional capacity (the most frames and
the largest working sides its positional tables hold). Propagation reads it for its defaults (the
window is the trained clip length; the working area is the trained frame's, aspect kept) and
checks an explicit window or working size against the capacity before any frame is decoded, so a
request the model cannot take fails with one line instead of a traceback from inside diffusers.

Capacity: Wan's rotary table (``WanRotaryPosEmbed``) holds ``rope_max_seq_len`` positions per axis
of the token grid (latent frames / temporal patch, latent rows / patch, latent columns / patch);
beyond it the table's ``view`` fails. SVD's U-Net embeds frame positions sinusoidally and has no
table, so its capacity is unbounded (None).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from genprop.models.backbones.interface import PositionalCapacity
from genprop.tasks import Task

TASK_NAMES = tuple(t.cli_name for t in Task)

CLIP_NAME = "genprop_clip.json"
# the MPD mask value that counts as the edit where a checkpoint records no calibrated one
MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class TrainedClip:
    """The training clips of a checkpoint, with its backbone's capacity (``genprop_clip.json``).

    Args:
        frames (int): frames per training clip.
        height (int), width (int): the training clips' frame size (the model's working size).
        fps (str | None, default None): their frame rate ("12", "30000/1001"); None = the source's own.
        capacity (PositionalCapacity): the backbone's positional capacity.
        region_iou (dict | None, default None): validation IoU of each source of the composite's edit region on
            the same held-out cases, {"mpd": float, "diff": float}; propagation's composite takes the MPD's mask
            only where it scores above the diff region (``PropagationConfig.composite`` "auto").
        mpd_threshold (float | None, default None): the MPD mask value calibrated on those cases
            (``genprop_quality.calibrate_mask_threshold``; ``region_iou["mpd"]`` is scored at it), which
            propagation's MPD region takes unless ``PropagationConfig.mask_threshold`` is set; None = 0.5.
        mpd_task_thresholds (dict | None, default None): {task's propagation name (``Task.cli_name``): mask
            value}, each calibrated on the validation cases propagated with that task (the MPD is
            task-conditioned, and a tracking mask and a removal mask need not share a cut); a task it does not
            name takes ``mpd_threshold``.
    """

    frames: int
    height: int
    width: int
    fps: str | None = None
    capacity: PositionalCapacity = PositionalCapacity()
    region_iou: dict | None = None
    mpd_threshold: float | None = None
    mpd_task_thresholds: dict | None = None

    def __post_init__(self):
        if self.frames < 1 or self.height < 1 or self.width < 1:
            raise ValueError(f"bad trained clip: {self.frames} frames of {self.width}x{self.height}")
        if self.mpd_threshold is not None and not 0.0 < self.mpd_threshold < 1.0:
            raise ValueError(f"bad trained clip: MPD threshold {self.mpd_threshold} is not inside (0, 1)")
        for name, cut in (self.mpd_task_thresholds or {}).items():
            if name not in TASK_NAMES or not 0.0 < cut < 1.0:
                raise ValueError(f"bad trained clip: MPD threshold {cut} for task {name!r} (tasks: "
                                 f"{', '.join(TASK_NAMES)}; a threshold inside (0, 1))")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainedClip":
        d = dict(d)
        cap = PositionalCapacity(**d.pop("capacity", {}))
        return cls(capacity=cap, **d)


def calibrated_threshold(model, task: int | None = None) -> float:
    """The MPD mask value ``model``'s checkpoint was calibrated at for ``task`` (``TrainedClip.mpd_task_thresholds``),
    else its overall one (``TrainedClip.mpd_threshold``), else 0.5.

    Args:
        model: a GenProp model (its ``trained_clip``, None for an untrained one).
        task (int | None, default None): the task embedding id propagated with (``genprop.tasks.Task``); None:
            the overall cut.
    """
    clip = getattr(model, "trained_clip", None)
    if clip is None:
        return MASK_THRESHOLD
    by_task = clip.mpd_task_thresholds or {}
    if task is not None and Task(int(task)).cli_name in by_task:
        return float(by_task[Task(int(task)).cli_name])
    return MASK_THRESHOLD if clip.mpd_threshold is None else clip.mpd_threshold


def trained_clip(backbone, frames: int, height: int, width: int, fps=None) -> TrainedClip:
    """The record for a model over ``backbone`` trained on clips of ``frames`` frames at ``height`` x ``width``.

    Args:
        backbone: the model's backbone adapter (its capacity is recorded).
        frames (int), height (int), width (int): the training clips' shape.
        fps: their frame rate (anything ``str`` prints as a rate), or None.
    """
    return TrainedClip(frames=int(frames), height=int(height), width=int(width),
                       fps=None if fps is None else str(fps), capacity=backbone.positional_capacity())


def save_trained_clip(directory: str, clip: TrainedClip) -> None:
    """Write ``genprop_clip.json`` into the (local) checkpoint directory."""
    with open(os.path.join(directory, CLIP_NAME), "w") as f:
        json.dump(clip.to_dict(), f, indent=2, sort_keys=True)


def load_trained_clip(directory: str) -> TrainedClip | None:
    """The clip record of a local checkpoint directory; None when it has none (older or untrained checkpoints).

    Raises:
        ValueError: the record exists but cannot be read (the message names the file).
    """
    path = os.path.join(directory, CLIP_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return TrainedClip.from_dict(json.load(f))
    except (OSError, TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: unreadable clip record ({type(e).__name__}: {e})") from e
