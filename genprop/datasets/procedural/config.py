"""Configuration of a procedural world and the seeded scene of each of its videos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genprop.datasets.procedural.scene import Scene, make_scene_from
from genprop.video import fps_string

TASKS = ("remove", "replace", "insert", "background", "track")


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of a procedural world (a dataset of seeded videos plus benchmark cases).

    Attributes:
        videos (int): number of videos.
        frames (int): frames per video.
        height, width (int): frame size in pixels.
        fps (str): frame rate, anything :class:`fractions.Fraction` parses (``"12"``, ``"30000/1001"``).
        seed (int): world seed; video ``i`` uses a seed derived from ``(seed, i)``.
        tasks (tuple[str, ...]): benchmark case kinds written per video (subset of :data:`TASKS`).
        pan (bool): whether the camera pans (the background slides).
    """

    videos: int = 4
    frames: int = 16
    height: int = 128
    width: int = 128
    fps: str = "12"
    seed: int = 0
    tasks: tuple[str, ...] = TASKS
    pan: bool = True

    def __post_init__(self):
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "fps", str(self.fps))
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; known: {TASKS}")
        if self.videos < 0 or self.frames < 1 or self.height < 16 or self.width < 16:
            raise ValueError(f"bad world size: {self.videos} videos of {self.frames} frames "
                             f"{self.height}x{self.width} (frames >= 1, sides >= 16)")
        fps_string(self.fps)

    @classmethod
    def tiny(cls, **overrides) -> "WorldConfig":
        """One 4-frame 32x32 video: for smoke tests."""
        return cls(**{**dict(videos=1, frames=4, height=32, width=32), **overrides})

    def video_seed(self, index: int) -> int:
        """The scene seed of video ``index`` (stable: depends on ``seed`` and ``index`` only)."""
        return int(np.random.SeedSequence([int(self.seed), int(index)]).generate_state(1)[0])

    def video_id(self, index: int) -> str:
        """E.g. ``proc_s0_v0003`` (dot-free, stable)."""
        return f"proc_s{int(self.seed)}_v{int(index):04d}"


def make_scene(seed: int, config: WorldConfig | None = None) -> Scene:
    """The scene of one video, deterministic in ``seed`` and the config's size, fps and pan."""
    config = config or WorldConfig()
    return make_scene_from(seed, frames=config.frames, height=config.height, width=config.width,
                           fps=config.fps, pan=config.pan)
