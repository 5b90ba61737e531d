"""The one record type every dataset reader returns: metadata now, pixels and masks on demand.

A :class:`VideoRecord` holds only metadata plus a small, picklable *loader* (lists of file
names, the annotation JSON URL, ...). Ray Data ships records between processes, so nothing
heavy is ever kept on the record; :meth:`VideoRecord.frames` and :meth:`VideoRecord.masks`
read from storage each time they are called.

A loader is any picklable object with two methods (duck-typed on purpose; each layout has its
own small loader class and no base class is shared):

* ``frames(record, indices: tuple[int, ...], size: tuple[int, int] | None) -> (T, H, W, 3) uint8``
* ``masks(record, indices: tuple[int, ...]) -> (K, T, H, W) bool``, K = ``len(record.object_ids)``

and, where the layout annotates them (the procedural world's ``Effects/``), a third:

* ``effects(record, indices) -> (K, T, H, W) bool | None``: each object's shadow and reflection (the background
  pixels it changes); None when this video has no effect annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from genprop import video
from genprop.video import fps_string  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class ObjectMasks:
    """Binary instance masks of some objects on some frames.

    Attributes:
        object_ids (tuple[int, ...]): id of each object (never 0; 0 is background).
        frame_indices (tuple[int, ...]): video frame index of each mask column.
        masks (np.ndarray): ``(K, T, H, W)`` bool; ``masks[k, t]`` is object ``object_ids[k]``
            on frame ``frame_indices[t]``.
    """

    object_ids: tuple[int, ...]
    frame_indices: tuple[int, ...]
    masks: np.ndarray

    def id_maps(self) -> np.ndarray:
        """The masks as ``(T, H, W)`` uint8 id maps (0 = background; later ids win overlaps)."""
        out = np.zeros(self.masks.shape[1:], dtype=np.uint8)
        for k, oid in enumerate(self.object_ids):
            out[self.masks[k]] = oid
        return out


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset: metadata, plus lazy access to its frames and instance masks.

    Attributes:
        source (str): ``"youtube-vos"``, ``"davis"`` or ``"sav"``.
        video_id (str): the id inside its dataset.
        url (str): the video's frame directory (image sequences) or its file (mp4).
        num_frames (int): number of frames.
        height (int): frame height in pixels.
        width (int): frame width in pixels.
        fps (Fraction): frame rate, exact (e.g. ``Fraction(30000, 1001)``).
        object_ids (tuple[int, ...]): ids of the annotated objects, sorted, never 0.
        annotated_frames (tuple[int, ...]): frame indices (positions ``0..num_frames-1``) that
            have annotations, sorted.
        loader (Any): layout-specific, picklable loader; see the module docstring.
    """

    source: str
    video_id: str
    url: str
    num_frames: int
    height: int
    width: int
    fps: Fraction
    object_ids: tuple[int, ...]
    annotated_frames: tuple[int, ...]
    loader: Any = field(default=None, repr=False, compare=False)

    def frames(self, indices: Sequence[int] | None = None,
               size: tuple[int, int] | None = None) -> np.ndarray:
        """Decode frames.

        Args:
            indices (Sequence[int] | None, default None): frame indices to read, in the order
                wanted; None reads every frame.
            size (tuple[int, int] | None, default None): ``(height, width)`` to resize to;
                None keeps the native size.

        Returns:
            np.ndarray: ``(T, H, W, 3)`` uint8.

        Raises:
            VideoDecodeError, ImageReadError: the video or a frame image is unreadable.
            IndexError: an index outside ``0..num_frames-1``.
        """
        idx = self._check_indices(range(self.num_frames) if indices is None else indices)
        if size is not None:
            size = (int(size[0]), int(size[1]))
            if min(size) < 1:
                raise ValueError(f"size must be a positive (height, width), got {size}")
        return self.loader.frames(self, idx, size)

    def masks(self, indices: Sequence[int] | None = None) -> ObjectMasks:
        """Read instance masks.

        Args:
            indices (Sequence[int] | None, default None): frame indices to read; each must be in
                :attr:`annotated_frames`. None reads every annotated frame.

        Returns:
            ObjectMasks: masks of every object in :attr:`object_ids` on those frames.

        Raises:
            AnnotationError: annotations that are unreadable, of the wrong size, or that
                disagree with the metadata.
            ValueError: an index that is not an annotated frame.
        """
        idx = self._check_indices(self.annotated_frames if indices is None else indices)
        annotated = set(self.annotated_frames)
        missing = [i for i in idx if i not in annotated]
        if missing:
            raise ValueError(f"{self.url}: frames {missing} have no annotations "
                             f"(annotated: {list(self.annotated_frames)[:20]}...)")
        masks = self.loader.masks(self, idx)
        return ObjectMasks(object_ids=self.object_ids, frame_indices=idx, masks=masks)

    def effects(self, indices: Sequence[int]) -> ObjectMasks | None:
        """Read effect masks (each object's shadow and reflection), where the dataset annotates them.

        Args:
            indices (Sequence[int]): frame indices to read (annotated frames, as for :meth:`masks`).

        Returns:
            ObjectMasks | None: one mask per object in :attr:`object_ids`; None when the layout or this video
            has no effect annotations (every real dataset genprop reads; the procedural world has them).

        Raises:
            AnnotationError: effect masks that are unreadable or of the wrong size.
        """
        read = getattr(self.loader, "effects", None)
        idx = self._check_indices(indices)
        fx = None if read is None else read(self, idx)
        return None if fx is None else ObjectMasks(object_ids=self.object_ids, frame_indices=idx, masks=fx)

    def _check_indices(self, indices: Sequence[int]) -> tuple[int, ...]:
        idx = tuple(int(i) for i in indices)
        bad = [i for i in idx if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.url}: frame indices {bad} outside 0..{self.num_frames - 1}")
        return idx


def parse_fps(value: Any, url: str) -> Fraction:
    """Parse a frame rate found in metadata (``"12/1"``, ``"30000/1001"``, ``24``, ``29.97``).

    Args:
        value (Any): the rate as found in metadata.
        url (str): where it came from, for the error message.

    Raises:
        AnnotationError: not a positive rate.
    """
    from genprop.errors import AnnotationError

    try:
        return video.parse_fps(value)
    except ValueError as e:
        raise AnnotationError(url, f"fps {value!r} is not a positive rate") from e
