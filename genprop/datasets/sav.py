"""SA-V (Segment Anything Video) reader: ``sav_<id>.mp4`` + ``sav_<id>_manual.json`` / ``_auto.json``.

Files sit directly under the root or one directory down (``sav_000/``, ...). Masklets are
annotated on every 4th frame of the 24 fps video: entry ``i`` of ``masklet`` is video frame
``4 * i``, and holds one COCO RLE per masklet.

Object ids are ``masklet_id + 1``: SA-V numbers masklets from 0, while genprop keeps id 0 for
background everywhere (id maps, palette PNGs), so every dataset shares one id convention.

Opening a record reads the JSON and probes the mp4 (for its exact, rational frame rate); the
JSON's frame count and size must agree with the video, and every RLE's size with the JSON's,
else :class:`AnnotationError` naming the JSON.
"""

from __future__ import annotations

import json
import re
from typing import Iterator
from dataclasses import dataclass

import numpy as np

from genprop import masks as masklib
from genprop import storage
from genprop.datasets.record import VideoRecord
from genprop.errors import AnnotationError, VideoDecodeError

SOURCE = "sav"
ANNOTATION_STRIDE = 4  # masklets are annotated at 6 fps on 24 fps video
WHICH = ("prefer-manual", "manual", "auto")
_NAME = re.compile(r"^(?P<vid>sav_\w+?)(?:_(?P<kind>manual|auto)\.json|\.mp4)$")


def _video():
    # Imported late: video I/O pulls in PyAV and decord, which a YouTube-VOS/DAVIS user never needs.
    from genprop import video, video_decode
    return video, video_decode


def _read_json(url: str) -> dict:
    try:
        data = json.loads(storage.read_text(url))
    except FileNotFoundError as e:
        raise AnnotationError(url, "annotation file not found") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise AnnotationError(url, f"not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise AnnotationError(url, "top level is not a JSON object")
    return data


@dataclass(frozen=True)
class _SavLoader:
    """Loads frames (from the mp4) and masks (from the JSON) of one SA-V video; picklable.

    Attributes:
        video_url (str): the mp4.
        annotation_url (str): the masklet JSON.
        columns (tuple[int, ...]): for each of the record's object ids, its position in the
            JSON's ``masklet_id`` list (the column of each ``masklet`` entry).
    """

    video_url: str
    annotation_url: str
    columns: tuple[int, ...]

    def frames(self, record: VideoRecord, indices: tuple[int, ...],
               size: tuple[int, int] | None) -> np.ndarray:
        out = _video()[1].decode(self.video_url, indices=list(indices), size=size)
        if out.shape[0] != len(indices):
            raise VideoDecodeError(self.video_url, f"decoded {out.shape[0]} of "
                                                   f"{len(indices)} requested frames")
        return out

    def masks(self, record: VideoRecord, indices: tuple[int, ...]) -> np.ndarray:
        data = _read_json(self.annotation_url)
        masklet = data.get("masklet") or []
        size = (record.height, record.width)
        out = np.zeros((len(self.columns), len(indices), *size), dtype=bool)
        for t, frame in enumerate(indices):
            entry = masklet[frame // ANNOTATION_STRIDE]
            for k, col in enumerate(self.columns):
                out[k, t] = masklib.rle_decode(entry[col], expected_size=size,
                                               url=self.annotation_url)
        return out


def _parse(url: str, data: dict) -> tuple[int, int, int, list[int], int]:
    """``(frames, height, width, masklet_ids, annotated)`` of a SA-V JSON, checked for consistency."""
    try:
        num_frames = int(data["video_frame_count"])
        height, width = int(data["video_height"]), int(data["video_width"])
        masklet = data["masklet"]
        if not isinstance(masklet, list):
            raise TypeError("'masklet' is not a list")
        if "masklet_id" in data:
            ids = [int(i) for i in data["masklet_id"]]
        else:  # some auto exports omit it; masklets are then numbered by position
            ids = list(range(len(masklet[0]) if masklet else 0))
    except (KeyError, TypeError, ValueError) as e:
        raise AnnotationError(url, f"malformed SA-V annotation ({type(e).__name__}: {e})") from e
    if "masklet_num" in data and int(data["masklet_num"]) != len(ids):
        raise AnnotationError(url, f"masklet_num {data['masklet_num']} but {len(ids)} masklet ids")
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise AnnotationError(url, f"masklet ids {ids} are not distinct non-negative integers")
    if not masklet:
        raise AnnotationError(url, "no annotated frames ('masklet' is empty)")
    if ANNOTATION_STRIDE * (len(masklet) - 1) >= num_frames:
        raise AnnotationError(url, f"{len(masklet)} annotated frames (every "
                                   f"{ANNOTATION_STRIDE}th) do not fit in {num_frames} frames")
    # Sizes are checked here, not at decode time: it costs no decoding and catches a bad RLE
    # anywhere in the video when the record is opened (and so in inspect).
    for i, entry in enumerate(masklet):
        if not isinstance(entry, list) or len(entry) != len(ids):
            raise AnnotationError(url, f"masklet entry {i} does not hold {len(ids)} RLEs")
        for rle in entry:
            size = rle.get("size") if isinstance(rle, dict) else None
            if size is None or [int(s) for s in size] != [height, width]:
                raise AnnotationError(url, f"RLE size {size} on annotated frame {i} (video frame "
                                           f"{ANNOTATION_STRIDE * i}) disagrees with the video's "
                                           f"{height}x{width}")
    return num_frames, height, width, ids, len(masklet)


class SavDataset:
    """An SA-V root: ``sav_*.mp4`` and their JSONs, directly under it or one level down.

    Args:
        url (str): the root (plain path, ``file://`` or ``s3://``).
        which (str, default "prefer-manual"): ``"manual"``, ``"auto"``, or ``"prefer-manual"``
            (the manual masklets when present, else the automatic ones).
    """

    format = SOURCE

    def __init__(self, url: str, which: str = "prefer-manual"):
        if which not in WHICH:
            raise ValueError(f"which must be one of {WHICH}, not {which!r}")
        self.url = str(url).rstrip("/")
        self.which = which
        self._files: dict[str, dict[str, str]] | None = None

    def _index(self) -> dict[str, dict[str, str]]:
        """video id -> {"mp4" | "manual" | "auto": url}, from one listing per directory."""
        if self._files is None:
            self._files = {}
            for base, names in _listing(self.url):
                for name in names:
                    m = _NAME.match(name)
                    if m:
                        kind = m.group("kind") or "mp4"
                        self._files.setdefault(m.group("vid"), {})[kind] = storage.join(base, name)
        return self._files

    def videos(self) -> list[str]:
        """Ids (``sav_<id>``) of every video with an mp4 or a JSON, sorted."""
        return sorted(self._index())

    def record(self, video_id: str) -> VideoRecord:
        """Open one video: read its JSON and probe its mp4.

        Args:
            video_id (str): a name from :meth:`videos`.

        Raises:
            VideoDecodeError: a missing, corrupt or truncated mp4.
            AnnotationError: a missing or malformed JSON, or one that disagrees with the video.
        """
        files = self._index().get(video_id)
        if files is None:
            raise AnnotationError(storage.join(self.url, video_id), "no such SA-V video")
        kinds = {"prefer-manual": ("manual", "auto"), "manual": ("manual",), "auto": ("auto",)}
        ann_url = next((files[k] for k in kinds[self.which] if k in files), None)
        video_url = files.get("mp4")
        if video_url is None:
            where = ann_url or storage.join(self.url, video_id)
            raise VideoDecodeError(where.rsplit("/", 1)[0] + f"/{video_id}.mp4", "video file not found")
        if ann_url is None:
            wanted = " or ".join(f"{video_id}_{k}.json" for k in kinds[self.which])
            raise AnnotationError(video_url, f"no annotations: {wanted} not found beside it")
        num_frames, height, width, ids, annotated = _parse(ann_url, _read_json(ann_url))
        info = _video()[0].probe(video_url)
        if (info.height, info.width) != (height, width):
            raise AnnotationError(ann_url, f"JSON says {height}x{width} but the video is "
                                           f"{info.height}x{info.width}")
        if info.num_frames != num_frames:
            raise AnnotationError(ann_url, f"JSON says {num_frames} frames but the video has "
                                           f"{info.num_frames}")
        object_ids = sorted(i + 1 for i in ids)
        loader = _SavLoader(video_url=video_url, annotation_url=ann_url,
                            columns=tuple(ids.index(i - 1) for i in object_ids))
        return VideoRecord(
            source=SOURCE, video_id=video_id, url=video_url, num_frames=num_frames,
            height=height, width=width, fps=info.fps, object_ids=tuple(object_ids),
            annotated_frames=tuple(ANNOTATION_STRIDE * i for i in range(annotated)),
            loader=loader)


def _listing(url: str) -> Iterator[tuple[str, list[str]]]:
    """``(dir_url, entry names)`` for ``url``, then for each directory directly under it (lazily,
    so detection can stop at the first hit)."""
    fs, path = storage.filesystem(url)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    top, subdirs = [], []
    for e in entries:
        name = e["name"].rstrip("/").rsplit("/", 1)[-1]
        (subdirs if e.get("type") == "directory" else top).append(name)
    yield url.rstrip("/"), top
    for d in sorted(subdirs):
        sub = storage.join(url, d)
        yield sub, storage.listdir(sub)


def looks_like_sav(url: str) -> bool:
    """True when ``url`` or a directory directly under it holds SA-V files."""
    return any(_NAME.match(n) for _, names in _listing(url) for n in names)
