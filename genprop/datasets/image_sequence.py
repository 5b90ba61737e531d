"""Videos stored as a directory of frame images plus a directory of PNG annotations.

Shared by the YouTube-VOS and DAVIS readers, which differ only in where the directories are,
where object ids and the frame rate come from. Frames are JPEG (as the datasets ship) or PNG (as
many exported trees have them); a directory with both is read as its JPEGs.
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from genprop import masks as masklib
from genprop import storage
from genprop.datasets.record import VideoRecord
from genprop.errors import AnnotationError, ImageReadError
from genprop.video import resize_frame

FRAME_EXTS = (".jpg", ".jpeg")
PNG_FRAME_EXTS = (".png",)
ANNOTATION_EXTS = (".png",)
# Remote reads are latency-bound; a few threads hide the round trips (PIL decodes without the GIL).
READ_THREADS = 8


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def _frame_order(name: str) -> tuple:
    # Numeric order when stems are numbers, so "5.jpg" < "10.jpg" even without zero padding.
    stem = _stem(name)
    return (int(stem), name) if stem.isdigit() else (math.inf, name)


def list_files(url: str, exts: Sequence[str]) -> list[str]:
    """Names of the files directly under ``url`` with one of ``exts``, in frame order.

    Returns an empty list when the directory does not exist.
    """
    try:
        names = storage.listdir(url)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((n for n in names if n.lower().endswith(tuple(exts))), key=_frame_order)


def parallel_map(fn: Callable, items: Iterable) -> list:
    """``[fn(x) for x in items]``, with a few threads for more than one item."""
    items = list(items)
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


def image_size(url: str) -> tuple[int, int]:
    """``(height, width)`` of an image, reading its header only (no pixel decode)."""
    try:
        data = storage.read_bytes(url)
    except FileNotFoundError as e:
        raise ImageReadError(url, "file not found") from e
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception as e:  # PIL raises many types for bad bytes
        raise ImageReadError(url, f"not a readable image ({type(e).__name__}: {e})") from e
    return int(height), int(width)


def ids_in(id_map: np.ndarray) -> tuple[int, ...]:
    """Non-background ids present in an id map, sorted."""
    return tuple(int(i) for i in np.unique(id_map) if i != 0)


@dataclass(frozen=True)
class ImageSequenceLoader:
    """Loads frames and masks of one image-sequence video (picklable: names only, no pixels).

    Attributes:
        frames_dir (str): directory of the frame images (JPEG or PNG).
        frame_names (tuple[str, ...]): frame file names, in frame order.
        annotations_dir (str): directory of the annotation PNGs.
        annotation_names (dict[int, str]): frame index -> annotation file name.
        strict_ids (bool): when True an annotation holding an id outside the record's object ids
            is an error (ids came from a manifest); when False such ids are ignored (ids came
            from the first annotation, and later objects cannot be declared anywhere).
        effects_dir (str | None): directory of per-object effect masks (``<object id>/<frame stem>.png``,
            binary), None when the video has none.
        effect_objects (tuple[int, ...]): the objects with a directory under ``effects_dir`` (the others
            have no shadow or reflection annotated: all False).
    """

    frames_dir: str
    frame_names: tuple[str, ...]
    annotations_dir: str
    annotation_names: dict
    strict_ids: bool
    effects_dir: str | None = None
    effect_objects: tuple[int, ...] = ()

    def frame_url(self, index: int) -> str:
        return storage.join(self.frames_dir, self.frame_names[index])

    def annotation_url(self, index: int) -> str:
        return storage.join(self.annotations_dir, self.annotation_names[index])

    def frames(self, record: VideoRecord, indices: tuple[int, ...],
               size: tuple[int, int] | None) -> np.ndarray:
        def read(i: int) -> np.ndarray:
            url = self.frame_url(i)
            img = masklib.read_image(url)
            if img.shape[:2] != (record.height, record.width):
                raise ImageReadError(url, f"frame is {img.shape[0]}x{img.shape[1]} but the video "
                                          f"is {record.height}x{record.width}")
            return img if size is None else resize_frame(img, *size)

        out = parallel_map(read, indices)
        if not out:
            h, w = size or (record.height, record.width)
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        return np.stack(out)

    def masks(self, record: VideoRecord, indices: tuple[int, ...]) -> np.ndarray:
        ids = np.asarray(record.object_ids, dtype=np.int64)

        def read(i: int) -> np.ndarray:
            url = self.annotation_url(i)
            id_map = masklib.read_id_map(url, expected_size=(record.height, record.width))
            if self.strict_ids:
                unknown = sorted(set(ids_in(id_map)) - set(record.object_ids))
                if unknown:
                    raise AnnotationError(url, f"object ids {unknown} are not in the video's "
                                               f"objects {list(record.object_ids)}")
            return id_map[None, :, :] == ids[:, None, None]  # (K, H, W)

        out = parallel_map(read, indices)
        if not out:
            return np.zeros((len(ids), 0, record.height, record.width), dtype=bool)
        return np.stack(out, axis=1)

    def effects(self, record: VideoRecord, indices: tuple[int, ...]) -> np.ndarray | None:
        if self.effects_dir is None:
            return None
        size = (record.height, record.width)

        def read(job: tuple[int, int]) -> np.ndarray:
            k, i = job
            if k not in self.effect_objects:
                return np.zeros(size, dtype=bool)
            url = storage.join(self.effects_dir, str(k), _stem(self.frame_names[i]) + ".png")
            try:
                return masklib.read_id_map(url, expected_size=size) > 0
            except ImageReadError as e:
                raise AnnotationError(url, f"effect mask: {e.reason}") from e

        jobs = [(k, i) for k in record.object_ids for i in indices]
        out = np.stack(parallel_map(read, jobs)) if jobs else np.zeros((0, *size), dtype=bool)
        return out.reshape(len(record.object_ids), len(indices), *size)


def open_sequence(*, source: str, video_id: str, frames_dir: str, annotations_dir: str,
                  fps: Fraction, object_ids: Sequence[int] | None, effects_dir: str | None = None) -> VideoRecord:
    """Build the record of one image-sequence video; reads two listings and one image header.

    Args:
        source (str): dataset name stored on the record.
        video_id (str): the video's id.
        frames_dir (str): directory of its frames (JPEG, else PNG).
        annotations_dir (str): directory of its annotation PNGs (named like the frames).
        fps (Fraction): its frame rate.
        object_ids (Sequence[int] | None): its objects when a manifest lists them; None takes the
            ids present in the first annotation (one more PNG read), and makes the loader ignore
            ids that only appear later.
        effects_dir (str | None, default None): the video's effect-mask directory (one subdirectory per object,
            PNGs named like the frames), when the dataset has one; listed once here.

    Raises:
        ImageReadError: no frames, or an unreadable first frame.
        AnnotationError: no annotations, or annotations whose names match no frame.
    """
    frame_names = list_files(frames_dir, FRAME_EXTS) or list_files(frames_dir, PNG_FRAME_EXTS)
    if not frame_names:
        raise ImageReadError(frames_dir, "no frames found (expected JPEG or PNG images)")
    ann_files = list_files(annotations_dir, ANNOTATION_EXTS)
    if not ann_files:
        raise AnnotationError(annotations_dir, "no annotation PNGs found for this video")
    position = {_stem(n): i for i, n in enumerate(frame_names)}
    orphans = [n for n in ann_files if _stem(n) not in position]
    if orphans:
        raise AnnotationError(annotations_dir, f"annotations {orphans[:5]} match no frame image")
    annotation_names = {position[_stem(n)]: n for n in ann_files}

    height, width = image_size(storage.join(frames_dir, frame_names[0]))
    strict = object_ids is not None
    if object_ids is None:
        first = min(annotation_names)
        url = storage.join(annotations_dir, annotation_names[first])
        object_ids = ids_in(masklib.read_id_map(url, expected_size=(height, width)))
    effect_objects = ()
    if effects_dir is not None:
        try:
            effect_objects = tuple(sorted(int(n) for n in storage.listdir(effects_dir) if n.isdigit()))
        except (FileNotFoundError, NotADirectoryError):
            effects_dir = None  # this video has no effect annotations
    loader = ImageSequenceLoader(
        frames_dir=frames_dir, frame_names=tuple(frame_names), annotations_dir=annotations_dir,
        annotation_names=annotation_names, strict_ids=strict, effects_dir=effects_dir,
        effect_objects=effect_objects)
    return VideoRecord(
        source=source, video_id=video_id, url=frames_dir, num_frames=len(frame_names),
        height=height, width=width, fps=Fraction(fps),
        object_ids=tuple(sorted(int(i) for i in object_ids)),
        annotated_frames=tuple(sorted(annotation_names)), loader=loader)
