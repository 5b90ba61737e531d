"""Video files: probe with PyAV, encode H.264 mp4 with PyAV, exact frame rates and frame sampling, any fsspec URL.

Conventions: frames are ``(T, H, W, 3)`` uint8 RGB; frame rates are exact rationals
(:class:`fractions.Fraction`, e.g. ``Fraction(30000, 1001)``) and never pass through floats.
Decoding a clip into an array is :mod:`genprop.video_decode` (decord, in a child process killed on a
timeout); streaming a long video in and out, with its colour tags, rotation and audio, is
:mod:`genprop.video_stream` and :mod:`genprop.video_writer`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Iterator

import av
import cv2
import numpy as np

from genprop import storage
from genprop.errors import VideoDecodeError


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` finds in a video.

    Args:
        num_frames (int): number of frames (from the container, else counted by demuxing).
        height (int), width (int): frame size in pixels.
        fps (Fraction): average frame rate, exact.
        duration_s (float): duration in seconds (stream duration, else ``num_frames / fps``).
    """

    num_frames: int
    height: int
    width: int
    fps: Fraction
    duration_s: float


def parse_fps(value) -> Fraction:
    """A frame rate as an exact positive :class:`Fraction`.

    Args:
        value: a ``Fraction``, an ``int``, a string ``"30000/1001"`` or ``"29.97"``, a
            ``(num, den)`` pair, or a float (taken as the decimal it prints as: 29.97 -> 2997/100).
    """
    try:
        if isinstance(value, tuple) and len(value) == 2:
            fps = Fraction(int(value[0]), int(value[1]))
        elif isinstance(value, (float, str)):
            fps = Fraction(repr(float(value)) if isinstance(value, float) else value.strip())
        elif isinstance(value, bool) or not hasattr(value, "denominator"):
            raise TypeError
        else:  # int, Fraction, numpy ints
            fps = Fraction(int(value.numerator), int(value.denominator))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise ValueError(f"not a frame rate: {value!r}") from None
    if fps <= 0:
        raise ValueError(f"frame rate must be positive, got {value!r}")
    return fps


def fps_string(fps) -> str:
    """An exact frame rate as text: ``"24"`` for integral rates, ``"30000/1001"`` otherwise.

    Args:
        fps: anything :func:`parse_fps` accepts.
    """
    fr = parse_fps(fps)
    return str(fr.numerator) if fr.denominator == 1 else f"{fr.numerator}/{fr.denominator}"


def sample_indices(num_frames: int, fps: Fraction, *, indices=None, stride: int | None = None,
                   target_fps: Fraction | float | str | None = None, start: int = 0,
                   max_frames: int | None = None) -> list[int]:
    """Source frame indices to decode.

    At most one of ``indices``, ``stride``, ``target_fps``; none means every frame from ``start``.
    With ``target_fps``, output frame ``j`` is source frame ``start + floor(j * fps / target_fps)``
    (exact rationals), for every ``j`` that lands inside the video; a target above the source
    rate repeats frames.

    Args:
        num_frames (int): frames in the video.
        fps (Fraction): source frame rate.
        indices (sequence of int, optional): explicit indices (any order, repeats allowed).
        stride (int, optional): take every ``stride``-th frame from ``start``.
        target_fps (Fraction | float | str, optional): resample to this rate (see :func:`parse_fps`).
        start (int, default 0): first source frame (not with ``indices``).
        max_frames (int, optional): keep at most this many output frames.

    Raises:
        IndexError: an index or ``start`` beyond the end of the video.
        ValueError: contradictory or invalid arguments.
    """
    check_sampling(indices, stride, target_fps, start, max_frames)
    if indices is not None:
        out = [int(i) for i in indices]
        bad = [i for i in out if not 0 <= i < num_frames]
        if bad:
            raise IndexError(f"frame index {bad[0]} out of range; the video has {num_frames} frames")
        return out[:max_frames]
    if not 0 <= start < num_frames:
        raise IndexError(f"start frame {start} out of range; the video has {num_frames} frames")
    limit = num_frames - start
    if target_fps is not None:
        step = parse_fps(fps) / parse_fps(target_fps)  # source frames per output frame, exact
        count = ceil(limit / step)  # j * step < limit  <=>  floor(j * step) <= limit - 1
        if max_frames is not None:
            count = min(count, max_frames)
        return [start + (j * step.numerator) // step.denominator for j in range(count)]
    return list(range(start, num_frames, stride or 1)[:max_frames])


def check_sampling(indices, stride, target_fps, start, max_frames) -> None:
    """Raise ValueError for sampling arguments that are wrong whatever the video (:func:`sample_indices`'s)."""
    if sum(x is not None for x in (indices, stride, target_fps)) > 1:
        raise ValueError("give at most one of indices, stride, target_fps")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if stride is not None and stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if target_fps is not None:
        parse_fps(target_fps)
    if indices is not None and start:
        raise ValueError("start cannot be combined with explicit indices")
    if indices is not None and len(indices) == 0:
        raise ValueError("indices is empty")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")


def open_container(path: str, url: str, *, video: bool = True):
    """A PyAV input container of the local file ``path`` (``url`` names it in errors).

    Args:
        path (str): the local file. url (str): what errors call it.
        video (bool, default True): require a video stream.

    Raises:
        VideoDecodeError: an empty or unreadable file, or (``video``) one without a video stream.
    """
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(url, "empty file (0 bytes)")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoDecodeError(url, f"not a readable video ({type(e).__name__}: {str(e).strip()})") from e
    if video and not container.streams.video:
        container.close()
        raise VideoDecodeError(url, "no video stream")
    return container


def probe_path(path: str, url: str) -> VideoInfo:
    """:func:`probe` of a local file.

    Args:
        path (str): the local file. url (str): what errors call it.
    """
    with open_container(path, url) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise VideoDecodeError(url, "the container states no frame rate")
        fps = Fraction(rate.numerator, rate.denominator)
        num_frames = int(stream.frames or 0)
        if num_frames <= 0:  # e.g. Matroska: count packets by demuxing, without decoding
            try:
                num_frames = sum(1 for p in container.demux(stream) if p.size)
            except av.FFmpegError as e:
                raise VideoDecodeError(url, f"cannot demux ({type(e).__name__}: {e})") from e
        if num_frames <= 0:
            raise VideoDecodeError(url, "the video has no frames")
        height, width = stream.codec_context.height, stream.codec_context.width
        if not height or not width:
            raise VideoDecodeError(url, "the video stream has no frame size")
        if stream.duration and stream.time_base:
            duration_s = float(stream.duration * stream.time_base)
        else:
            duration_s = float(num_frames / fps)
    return VideoInfo(num_frames, height, width, fps, duration_s)


def probe(url: str) -> VideoInfo:
    """Frame count, size, exact frame rate and duration of the video at ``url`` (PyAV).

    Args:
        url (str): plain path, ``file://`` or ``s3://`` URL (remote files are copied locally first).

    Raises:
        VideoDecodeError: missing, empty or unreadable file.
    """
    with local_video(url) as path:
        return probe_path(path, url)


@contextlib.contextmanager
def local_video(url: str) -> Iterator[str]:
    """A local path of the video at ``url`` (:func:`storage.local_copy`); a missing file is a VideoDecodeError."""
    if not storage.exists(url):
        raise VideoDecodeError(url, "file not found")
    with storage.local_copy(url) as path:
        yield path


def resize_frame(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (H, W, 3) frame the way every genprop reader does: INTER_AREA when shrinking, else linear.

    Args:
        img (np.ndarray): (H, W, 3) uint8.
        height, width (int): the output size.
    """
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    shrink = height <= h and width <= w
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def encode(frames: np.ndarray, url: str, fps, *, crf: int = 12, lossless: bool = False) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to an H.264 mp4 at ``url`` (written atomically).

    Pixel format is yuv420p for even sizes and yuv444p when the width or height is odd (libx264
    refuses odd yuv420p sizes; frames are never resized) or when ``lossless``.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8, T >= 1.
        url (str): destination (plain path, ``file://``, ``s3://``).
        fps (Fraction | int | str): exact frame rate, e.g. ``Fraction(30000, 1001)`` or "30000/1001".
        crf (int, default 12): x264 constant rate factor (0-51, lower is better).
        lossless (bool, default False): qp 0 in yuv444p; pixels round-trip up to RGB<->YUV rounding.

    Raises:
        ValueError: bad frames, fps or crf (the message names ``url``).
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"{url}: frames must be a uint8 numpy array, got "
                         f"{type(frames).__name__} {getattr(frames, 'dtype', '')}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise ValueError(f"{url}: frames must have shape (T>=1, H, W, 3), got {frames.shape}")
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"{url}: crf must be in 0..51, got {crf}")
    try:
        rate = parse_fps(fps)
    except ValueError as e:
        raise ValueError(f"{url}: {e}") from None
    _, height, width, _ = frames.shape
    pix_fmt = "yuv444p" if lossless or height % 2 or width % 2 else "yuv420p"
    with tempfile.TemporaryDirectory(prefix="genprop-encode-") as tmp:
        path = os.path.join(tmp, "video.mp4")
        # +faststart puts the index (moov) first: streamable, and a cut file keeps its index.
        with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.codec_context.time_base = 1 / rate
            # mbtree off: with it, x264's output here differed from run to run (even on one
            # thread); without it a rerun writes byte-identical files (measured, see the test).
            stream.options = {**({"qp": "0"} if lossless else {"crf": str(int(crf))}),
                              "x264-params": "mbtree=0"}
            for t, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                frame.pts, frame.time_base = t, 1 / rate
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))  # flush: the encoder holds the last frames back
        storage.put_file(path, url)
