"""Which layout a dataset root has, and the entry points that work on any of them.

``detect_format`` -> ``open_dataset`` -> ``Dataset.videos()`` / ``Dataset.record(id)``;
``iter_videos`` skips bad videos (reporting why), ``inspect_dataset`` checks every video cheaply.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Protocol

from genprop import storage
from genprop.datasets.davis import RESOLUTIONS, DavisDataset
from genprop.datasets.record import VideoRecord, fps_string
from genprop.datasets.sav import SavDataset, looks_like_sav
from genprop.datasets.youtube_vos import YouTubeVOSDataset
from genprop.errors import DataError, UnknownLayoutError

logger = logging.getLogger(__name__)

FORMATS = ("youtube-vos", "davis", "sav")
_READERS = {"youtube-vos": YouTubeVOSDataset, "davis": DavisDataset, "sav": SavDataset}


class Dataset(Protocol):
    """What every reader offers (YouTubeVOSDataset, DavisDataset, SavDataset)."""

    format: str
    url: str

    def videos(self) -> list[str]: ...

    def record(self, video_id: str) -> VideoRecord: ...


def detect_format(url: str) -> str:
    """The layout of a dataset root.

    Looks for, in order: ``JPEGImages/480p`` or ``JPEGImages/Full-Resolution`` (DAVIS), any
    other ``JPEGImages/`` (YouTube-VOS), ``sav_*.mp4`` / ``sav_*_{manual,auto}.json`` at the root
    or one directory down (SA-V).

    Args:
        url (str): the root (plain path, ``file://`` or ``s3://``).

    Returns:
        str: ``"youtube-vos"``, ``"davis"`` or ``"sav"``.

    Raises:
        UnknownLayoutError: none of those, naming what was looked for.
    """
    url = str(url).rstrip("/")
    try:
        names = storage.listdir(url)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise UnknownLayoutError(url, "no such directory") from e
    if "JPEGImages" in names:
        inner = storage.listdir(storage.join(url, "JPEGImages"))
        return "davis" if any(r in inner for r in RESOLUTIONS) else "youtube-vos"
    if looks_like_sav(url):
        return "sav"
    hint = ""
    splits = [n for n in names if n.lower() in ("train", "valid", "val", "test", "trainval")]
    if splits:
        hint = f"; it has {splits}: pass one split's directory instead"
    raise UnknownLayoutError(
        url, "unknown dataset layout: found neither JPEGImages/ (YouTube-VOS; DAVIS with "
             "JPEGImages/480p or Full-Resolution) nor sav_*.mp4 / sav_*_manual.json / "
             f"sav_*_auto.json at the root or one level down (SA-V){hint}")


# What each layout looks like at its root (for the error a wrong --format gets).
EXPECTED = {"youtube-vos": "JPEGImages/<video>/ frame directories (and Annotations/<video>/)",
            "davis": "JPEGImages/480p/ or JPEGImages/Full-Resolution/ (and Annotations/<res>/)",
            "sav": "sav_*.mp4 videos with sav_*_manual.json / sav_*_auto.json at the root or one level down"}


def _found(url: str) -> str:
    """A short description of what is at a root: its first entries (and JPEGImages/'s)."""
    try:
        names = sorted(storage.listdir(url))
    except (FileNotFoundError, NotADirectoryError):
        return "no such directory"
    if not names:
        return "an empty directory"
    shown = ", ".join(names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
    if "JPEGImages" in names:
        inner = sorted(storage.listdir(storage.join(url, "JPEGImages")))[:4]
        shown += f"; JPEGImages/ holds {', '.join(inner) or 'nothing'}"
    return shown


def check_format(url: str, format: str) -> None:
    """Refuse a root whose layout is not ``format``, naming the layout expected, what was found and, where the
    tree is recognised, the format to pass.

    Raises:
        UnknownLayoutError: the layout differs (or is none of the known ones).
    """
    try:
        detected = detect_format(url)
    except UnknownLayoutError:
        detected = None
    if detected == format:
        return
    hint = f"; this is a {detected} tree: pass --format {detected} (or auto)" if detected else ""
    raise UnknownLayoutError(url, f"not a {format} tree: expected {EXPECTED[format]}; found {_found(url)}{hint}")


def open_dataset(url: str, format: str = "auto", **options) -> Dataset:
    """Open a dataset root.

    Args:
        url (str): the root (plain path, ``file://`` or ``s3://``).
        format (str, default "auto"): ``"youtube-vos"``, ``"davis"``, ``"sav"``, or ``"auto"``
            to detect it with :func:`detect_format`; a named format is checked against the tree
            (:func:`check_format`).
        **options: passed to the reader: ``resolution=`` for DAVIS, ``which=`` for SA-V.

    Raises:
        UnknownLayoutError: the layout is not recognised, or is not the named ``format``.
        ValueError: an unknown ``format`` name.
    """
    if format == "auto":
        format = detect_format(url)
    elif format in _READERS:
        check_format(str(url).rstrip("/"), format)
    if format not in _READERS:
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, not {format!r}")
    return _READERS[format](url, **options)


def _reason(err: DataError) -> str:
    return f"{err.url}: {err.reason}"


def iter_videos(url: str, format: str = "auto",
                on_bad: Callable[[str, str], None] | None = None, *, check: bool = True,
                **options) -> Iterator[VideoRecord]:
    """Records of every video, skipping (and reporting) the bad ones.

    A video is bad when it cannot be opened, or (with ``check``) when :func:`check_record`
    fails on it. Errors in frames that were not checked surface only when they are read.

    Args:
        url (str): the dataset root.
        format (str, default "auto"): as for :func:`open_dataset`.
        on_bad (Callable[[str, str], None] | None, default None): called with
            ``(video_id, reason)`` for each skipped video; the reason names the bad file.
        check (bool, default True): also read each video's first and last frame and first
            annotation (as :func:`inspect_dataset` does); False only opens the record (listings,
            metadata, a frame header, the mp4 probe), which is cheaper.
        **options: passed to the reader (see :func:`open_dataset`).

    Yields:
        VideoRecord: one per good video, in id order.
    """
    ds = open_dataset(url, format, **options)
    for vid in ds.videos():
        try:
            rec = ds.record(vid)
            if check:
                check_record(rec)
        except DataError as e:
            logger.warning("skipping video %s of %s: %s", vid, ds.url, _reason(e))
            if on_bad is not None:
                on_bad(vid, _reason(e))
            continue
        yield rec


def check_record(rec: VideoRecord) -> None:
    """Read the first and last frame and the first annotation of a record (raises DataError).

    The last frame catches a truncated video whose header still claims every frame.
    """
    rec.frames(sorted({0, rec.num_frames - 1}))
    if rec.annotated_frames:
        rec.masks([rec.annotated_frames[0]])


def inspect_dataset(url: str, format: str = "auto", **options) -> dict:
    """Summarise a dataset and check every video cheaply but really.

    Each video is opened and its first and last frame and first annotation are read, so corrupt
    images, mismatched annotation sizes, missing annotations and truncated videos show up
    under ``bad``.

    Args:
        url (str): the dataset root.
        format (str, default "auto"): as for :func:`open_dataset`.
        **options: passed to the reader (see :func:`open_dataset`).

    Returns:
        dict: ``{"format", "url", "videos": [{"id", "frames", "height", "width", "fps",
        "objects", "annotated_frames"}], "bad": [{"id", "reason"}]}``; ``fps`` is a string
        such as ``"24"`` or ``"30000/1001"``, ``annotated_frames`` a count.
    """
    ds = open_dataset(url, format, **options)
    good, bad = [], []
    for vid in ds.videos():
        try:
            rec = ds.record(vid)
            check_record(rec)
        except DataError as e:
            bad.append({"id": vid, "reason": _reason(e)})
            continue
        good.append({
            "id": vid, "frames": rec.num_frames, "height": rec.height, "width": rec.width,
            "fps": fps_string(rec.fps), "objects": list(rec.object_ids),
            "annotated_frames": len(rec.annotated_frames),
        })
    return {"format": ds.format, "url": ds.url, "videos": good, "bad": bad}
