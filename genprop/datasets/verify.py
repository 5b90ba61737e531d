"""Verify a dataset whole: decode every frame and every annotation of every video, report each bad item.

:func:`genprop.datasets.inspect_dataset` checks a video's first and last frame and first annotation,
which is cheap but misses a truncated JPEG in the middle or one wrong-size mask. Verification reads
everything: each frame (decodable, of the video's size; an mp4 decodes to the frame count its
annotation states), each annotation (decodable, of the video's size, holding only the video's
object ids where a manifest lists them). Reads go in chunks; a chunk that fails is read again item
by item, so every bad item is reported with its file and reason, not just the first. Locally this
runs video by video (``verify_dataset``); ``pipelines.verify_dataset`` runs the same per-video
check as a Ray Data job over object storage for a real dataset.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from genprop.datasets.record import VideoRecord
from genprop.errors import DataError

# Frames or annotations read at once (memory: one chunk of frames).
CHUNK = 32


def _reason(e: DataError) -> str:
    return f"{e.url}: {e.reason}"


def _check_items(read: Callable[[Sequence[int]], object], indices: Sequence[int], what: str) -> list[str]:
    """Read ``indices`` in chunks; a failing chunk item by item. Returns one reason per bad item."""
    bad = []
    for s in range(0, len(indices), CHUNK):
        chunk = list(indices[s:s + CHUNK])
        try:
            read(chunk)
            continue
        except DataError:
            pass
        for i in chunk:
            try:
                read([i])
            except DataError as e:
                bad.append(f"{what} {i}: {_reason(e)}")
    return bad


def _check_video_frames(rec: VideoRecord, url: str, timeout_s: float) -> list[str]:
    """An mp4-backed record: one streaming pass; the frame count and size must be the record's."""
    from genprop.video_stream import VideoReader

    count = 0
    try:
        with VideoReader(url, timeout_s=timeout_s) as reader:
            for f in reader:
                if f.image.shape[:2] != (rec.height, rec.width):
                    return [f"frame {f.index}: {url}: frame is {f.image.shape[0]}x{f.image.shape[1]} but the "
                            f"annotation says {rec.height}x{rec.width}"]
                count += 1
    except DataError as e:
        return [f"frame {count}: {_reason(e)}"]
    if count != rec.num_frames:
        return [f"{url}: decoded {count} frames, the annotation states {rec.num_frames}"]
    return []


def verify_record(rec: VideoRecord, timeout_s: float = 120.0) -> list[str]:
    """Every bad frame and annotation of one video, as "<item> <index>: <file>: <reason>" (empty: all good).

    Args:
        rec (VideoRecord): the video.
        timeout_s (float, default 120): the longest wait for one decoded frame of an mp4.
    """
    video_url = getattr(rec.loader, "video_url", None)
    if video_url is not None:
        bad = _check_video_frames(rec, video_url, timeout_s)
    else:
        bad = _check_items(lambda idx: rec.frames(idx), list(range(rec.num_frames)), "frame")
    bad += _check_items(lambda idx: rec.masks(idx), list(rec.annotated_frames), "annotation")
    return bad


def verify_video(dataset, video_id: str) -> dict:
    """``{"id", "bad": [reasons], "frames", "annotations"}`` for one video of an open dataset (a video that cannot
    be opened at all is one bad item)."""
    try:
        rec = dataset.record(video_id)
    except DataError as e:
        return {"id": video_id, "bad": [_reason(e)], "frames": 0, "annotations": 0}
    return {"id": video_id, "bad": verify_record(rec), "frames": rec.num_frames,
            "annotations": len(rec.annotated_frames)}


def progress_line(done: int, total: int, bad: int, started: float) -> str:
    """``verify: 12/40 videos, 3 bad items, elapsed 0:05, ETA 0:12``."""
    from genprop.propagation.progress import format_duration

    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else float("nan")
    return (f"verify: {done}/{total} videos, {bad} bad item{'s' if bad != 1 else ''}, "
            f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}")


def verify_dataset(url: str, format: str = "auto", progress: Callable[[int, int, int], None] | None = None,
                   **options) -> dict:
    """Verify every video of a dataset locally (see the module docstring).

    Args:
        url (str): the dataset root. format (str, default "auto"): as for ``open_dataset``.
        progress (callable | None): called as ``progress(videos done, videos, bad items)`` after each video.
        **options: passed to the reader.

    Returns:
        ``{"format", "url", "videos": int, "frames": int, "annotations": int, "bad": [{"id", "reason"}]}``,
        one ``bad`` entry per bad item.
    """
    from genprop.datasets.layout import open_dataset

    ds = open_dataset(url, format, **options)
    ids = ds.videos()
    bad, frames, annotations = [], 0, 0
    for k, vid in enumerate(ids, 1):
        row = verify_video(ds, vid)
        bad += [{"id": vid, "reason": r} for r in row["bad"]]
        frames, annotations = frames + row["frames"], annotations + row["annotations"]
        if progress is not None:
            progress(k, len(ids), len(bad))
    return {"format": ds.format, "url": ds.url, "videos": len(ids), "frames": frames, "annotations": annotations,
            "bad": bad}
