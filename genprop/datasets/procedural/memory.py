"""Procedural videos rendered in memory, behind the dataset-reader interface the shard job reads.

``describe_video``, ``plan_samples`` and ``make_planned_pair`` take any object with ``format``,
``url``, ``videos()`` and ``record(video_id)``; :class:`RenderedWorld` is one whose videos are scenes
rendered from their seeds on demand (a 9-frame 32x32 scene renders in about a millisecond), so GenProp
training on the procedural world makes the shard job's samples on the fly, with no world or shards on disk.

The records hold what a world written by ``write_world`` and read back holds — frames, instance masks
of the objects visible in at least one frame (``video_meta``'s rule) and their effect masks — except that the
frames are the renderer's exact pixels, not JPEGs of them.
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from genprop.datasets.procedural.config import WorldConfig, make_scene
from genprop.datasets.procedural.render import RenderedVideo, render
from genprop.datasets.record import VideoRecord
from genprop.video import parse_fps

SOURCE = "procedural"


def video_id(seed: int) -> str:
    """The id of the scene of ``seed``: ``s<seed, 9 digits>`` (dot-free; sorts in seed order)."""
    return f"s{int(seed):09d}"


class _RenderedLoader:
    """The record loader: slices of one rendered video."""

    def __init__(self, rendered: RenderedVideo, object_ids: tuple[int, ...]):
        self.rendered, self.object_ids = rendered, object_ids

    def frames(self, record, indices, size):
        frames = self.rendered.frames[list(indices)]
        if size is not None and tuple(size) != frames.shape[1:3]:
            frames = np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in frames])
        return np.ascontiguousarray(frames)

    def masks(self, record, indices):
        ids = self.rendered.ids[list(indices)]
        return np.stack([ids == k for k in self.object_ids]) if self.object_ids else \
            np.zeros((0, *ids.shape), bool)

    def effects(self, record, indices):
        idx = list(indices)
        return np.stack([self.rendered.effects[k][idx] for k in self.object_ids]) if self.object_ids else \
            np.zeros((0, len(idx), *self.rendered.ids.shape[1:]), bool)


class RenderedWorld:
    """Scenes of the given seeds at one world geometry, as a dataset (``format`` "procedural").

    Args:
        seeds (Sequence[int]): scene seeds (``make_scene(seed, world)``); video ids from :func:`video_id`.
        world (WorldConfig): frames, size, fps and pan of every scene.
    """

    format = SOURCE

    def __init__(self, seeds, world: WorldConfig):
        self.world = world
        self.seeds = {video_id(s): int(s) for s in seeds}
        self.url = f"procedural://{world.frames}x{world.height}x{world.width}@{world.fps}"
        self._records: dict[str, VideoRecord] = {}

    def videos(self) -> list[str]:
        """The video ids, sorted (= seed order)."""
        return sorted(self.seeds)

    def record(self, vid: str) -> VideoRecord:
        """The record of one video (rendered on first use, then kept).

        Args:
            vid (str): one of :meth:`videos`.
        """
        if vid not in self._records:
            rendered = render(make_scene(self.seeds[vid], self.world))
            t = rendered.frames.shape[0]
            visible = tuple(int(k) for k in rendered.object_ids if (rendered.ids == k).any())
            self._records[vid] = VideoRecord(
                source=SOURCE, video_id=vid, url=f"{self.url}/{vid}", num_frames=t,
                height=rendered.frames.shape[1], width=rendered.frames.shape[2],
                fps=Fraction(parse_fps(self.world.fps)), object_ids=visible, annotated_frames=tuple(range(t)),
                loader=_RenderedLoader(rendered, visible))
        return self._records[vid]
