"""Video I/O: probe with PyAV, decode with decord, encode H.264 mp4 with PyAV, from any fsspec URL.

Conventions: frames are ``(T, H, W, 3)`` uint8 RGB; frame rates are exact rationals
(:class:`fractions.Fraction`, e.g. ``Fraction(30000, 1001)``) and never pass through floats.

Decoding runs, by default, in a child process started with ``spawn`` that is killed when its
timeout expires: decord can hang while holding the GIL (a container that over-reports its frame
count), so no thread in the decoding process could ever stop it. The child writes frames into an
``.npy`` file in a temporary directory, which the parent reads back; nothing large is pickled.
As with any ``spawn``-based code, a script that calls :func:`decode` at import time needs the
``if __name__ == "__main__":`` guard (the child imports the parent's main module).
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import multiprocessing
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Callable, Iterator, Sequence

import av
import cv2
import numpy as np

from genprop import storage
from genprop.errors import DataError, DecodeTimeoutError, VideoDecodeError

# spawn, not fork: forking a threaded process (Ray workers, fsspec's event loop thread) can copy
# held locks into the child and deadlock it. forkserver would also be safe and start faster, but
# its server keeps the sys.path/environment of the first call; spawn has no hidden state.
_MP_CONTEXT = "spawn"
# Reasons sent back from the child are cut to this many characters (decord appends stack traces).
_MAX_REASON = 500

# A decoder writes the source frames ``indices`` of the local file ``path`` into ``out``
# ((T, H, W, 3) uint8, T == len(indices), resized to out's H, W), ``chunk_frames`` at a time.
Decoder = Callable[[str, Sequence[int], np.ndarray, int], None]


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
    _check_sampling(indices, stride, target_fps, start, max_frames)
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


def _check_sampling(indices, stride, target_fps, start, max_frames) -> None:
    """Raise ValueError for sampling arguments that are wrong whatever the video."""
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


def _probe_path(path: str, url: str) -> VideoInfo:
    """:func:`probe` of a local file; ``url`` is only used in errors."""
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
        return _probe_path(path, url)


@contextlib.contextmanager
def local_video(url: str) -> Iterator[str]:
    """A local path of the video at ``url`` (:func:`storage.local_copy`); a missing file is a VideoDecodeError."""
    if not storage.exists(url):
        raise VideoDecodeError(url, "file not found")
    with storage.local_copy(url) as path:
        yield path


def _rgb(frame) -> np.ndarray:
    """A decord frame as (H, W, 3) uint8.

    decord 0.6 pads each row to a 64-byte multiple for some narrow widths and then reports the
    shape as (H, W, padded_row // W), e.g. (32, 48, 4) for a 48-pixel-wide video; undo that.
    """
    a = frame.asnumpy() if hasattr(frame, "asnumpy") else np.asarray(frame)
    if a.shape[-1] != 3:
        h, w = a.shape[:2]
        a = a.reshape(h, -1)[:, : w * 3].reshape(h, w, 3)
    return a


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


def decord_decoder(path: str, indices: Sequence[int], out: np.ndarray, chunk_frames: int = 32) -> None:
    """The default decoder: decord, reading sequentially, into ``out`` ``chunk_frames`` at a time.

    Source frames are visited in ascending order with ``next()`` / ``skip_frames()`` (sequential
    decoding is ~6x faster than ``get_batch``); it seeks only when a keyframe lies ahead, where
    seeking saves decoding. Memory: ``out`` plus one (chunk_frames, H, W, 3) buffer.

    Args:
        path (str): local video file.
        indices (sequence of int): source frames; ``out[k]`` receives frame ``indices[k]``.
        out (np.ndarray): (T, H, W, 3) uint8, T == len(indices); frames are resized to H, W.
        chunk_frames (int, default 32): frames gathered before each write into ``out``.
    """
    import decord

    num_out, height, width, _ = out.shape
    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    try:
        keys = sorted(vr.get_key_indices())
    except Exception:  # no index: never seek, decode forward
        keys = []
    buf = np.empty((max(1, min(chunk_frames, num_out)), height, width, 3), np.uint8)
    dest: list[int] = []  # out positions of the rows filled in buf
    pos, img = -1, None  # last source frame read, and its resized image
    for k in sorted(range(num_out), key=lambda k: indices[k]):
        i = indices[k]
        if i != pos:
            key = keys[bisect.bisect_right(keys, i) - 1] if keys and keys[0] <= i else -1
            try:
                if i < pos or key > pos + 1:
                    frame = vr[i]  # seek to the keyframe before i, decode forward to i
                else:
                    if i > pos + 1:
                        vr.skip_frames(i - pos - 1)
                    frame = vr.next()
            except (StopIteration, IndexError):
                raise EOFError(f"the stream ended before frame {i}") from None
            pos, img = i, resize_frame(_rgb(frame), height, width)
        buf[len(dest)] = img
        dest.append(k)
        if len(dest) == len(buf):
            out[dest] = buf
            dest.clear()
    if dest:
        out[dest] = buf[: len(dest)]


def _resolve(decoder) -> Decoder:
    if decoder is None:
        return decord_decoder
    if isinstance(decoder, str):
        module, sep, name = decoder.partition(":")
        if not sep:
            raise ValueError(f"decoder must be 'module:function', got {decoder!r}")
        return getattr(importlib.import_module(module), name)
    if not callable(decoder):
        raise TypeError(f"decoder must be callable or 'module:function', got {decoder!r}")
    return decoder


def _decode_local(path: str, url: str, request: dict, decoder, npy_path: str | None):
    """Probe, sample, allocate the output (in memory, or an .npy file) and run the decoder.

    Returns (frames, info, indices). Every failure is a :class:`VideoDecodeError` naming ``url``.
    """
    info = _probe_path(path, url)
    try:
        indices = sample_indices(info.num_frames, info.fps, **request["sampling"])
    except IndexError as e:
        raise VideoDecodeError(url, str(e)) from e
    height, width = request["size"] or (info.height, info.width)
    shape = (len(indices), height, width, 3)
    if npy_path is None:
        out = np.empty(shape, np.uint8)
    else:
        out = np.lib.format.open_memmap(npy_path, mode="w+", dtype=np.uint8, shape=shape)
    try:
        _resolve(decoder)(path, indices, out, request["chunk_frames"])
    except DataError:
        raise
    except Exception as e:  # decord raises DECORDError / RuntimeError on corrupt data
        reason = f"decoding failed ({type(e).__name__}: {str(e).strip()})"
        raise VideoDecodeError(url, reason[:_MAX_REASON]) from e
    # No out.flush(): msync would force the pages to disk; the parent reads them through the
    # shared page cache, and the file is deleted right after.
    return out, info, indices


def _child_main(conn, path, url, request, decoder, npy_path) -> None:
    """Entry point of the decoding child: sends ("ok", info) or ("error", reason) to ``conn``."""
    try:
        _, info, _ = _decode_local(path, url, request, decoder, npy_path)
        conn.send(("ok", info))
    except DataError as e:
        conn.send(("error", e.reason[:_MAX_REASON]))
    except BaseException as e:  # anything else still comes back as a reason, not a silent death
        conn.send(("error", f"{type(e).__name__}: {e}"[:_MAX_REASON]))
    finally:
        conn.close()


def _decode_in_child(path, url, request, decoder, timeout_s: float):
    if multiprocessing.current_process().daemon:  # e.g. a torch DataLoader worker
        raise RuntimeError("decoding under a timeout needs a child process, which a daemonic process "
                           "cannot start; decode elsewhere, or pass timeout_s=None (trusted inputs)")
    ctx = multiprocessing.get_context(_MP_CONTEXT)
    with tempfile.TemporaryDirectory(prefix="genprop-decode-") as tmp:
        npy_path = os.path.join(tmp, "frames.npy")
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child_main, args=(writer, path, url, request, decoder, npy_path),
                           name="genprop-decode", daemon=True)
        proc.start()
        writer.close()  # so that reader sees EOF if the child dies without sending
        result = None  # ("ok", VideoInfo) | ("error", reason) | ("died", None); None: timed out
        try:
            if reader.poll(timeout_s):  # data, or EOF when the child died without sending
                try:
                    result = reader.recv()
                except EOFError:
                    result = ("died", None)
        finally:
            if result is None or result[0] != "ok":
                proc.kill()  # SIGKILL: works even while the child holds the GIL
            proc.join(10)
            if proc.is_alive():  # sent its result but hangs on exit
                proc.kill()
                proc.join()
            reader.close()
        if result is None:
            err = DecodeTimeoutError(
                url, f"decoding did not finish within {timeout_s:g} s; the decoder was killed")
            err.pid = proc.pid
            raise err
        if result[0] == "died":
            raise VideoDecodeError(url, f"the decoder process died (exit code {proc.exitcode})")
        if result[0] == "error":
            raise VideoDecodeError(url, result[1])
        # A private (copy-on-write) map of the file: no copy; the deleted file lives while mapped.
        return np.asarray(np.load(npy_path, mmap_mode="c")), result[1]


def decode_with_info(url: str, *, indices=None, stride=None, target_fps=None, start=0, max_frames=None,
                     size: tuple[int, int] | None = None, timeout_s: float | None = 120.0,
                     chunk_frames: int = 32, decoder=None) -> tuple[np.ndarray, VideoInfo, list[int]]:
    """:func:`decode`, also returning the :class:`VideoInfo` and the source indices decoded."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if min(size) < 1:
            raise ValueError(f"size must be positive (H, W), got {size}")
    request = {"sampling": dict(indices=indices, stride=stride, target_fps=target_fps, start=start,
                                max_frames=max_frames),
               "size": size, "chunk_frames": int(chunk_frames)}
    _check_sampling(**request["sampling"])  # a bad call is a ValueError, not a VideoDecodeError
    _resolve(decoder)  # likewise a decoder that cannot be imported
    with local_video(url) as path:
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(url, "empty file (0 bytes)")
        if timeout_s is None:
            return _decode_local(path, url, request, decoder, None)
        frames, info = _decode_in_child(path, url, request, decoder, float(timeout_s))
    idx = sample_indices(info.num_frames, info.fps, **request["sampling"])
    return frames, info, idx


def decode(url: str, *, indices=None, stride=None, target_fps=None, start=0, max_frames=None,
           size: tuple[int, int] | None = None, timeout_s: float | None = 120.0,
           chunk_frames: int = 32, decoder=None) -> np.ndarray:
    """Decode frames of the video at ``url`` as ``(T, H, W, 3)`` uint8 RGB.

    Args:
        url (str): plain path, ``file://`` or ``s3://`` URL (remote files are first copied to a
            local temporary file: decord reads file-like objects whole into memory).
        indices, stride, target_fps, start, max_frames: which frames; see :func:`sample_indices`.
        size ((int, int), optional): output (H, W); cv2 INTER_AREA when shrinking, else INTER_LINEAR.
        timeout_s (float | None, default 120): kill the decoding child process after this many
            seconds (counted from its start, probing included) and raise
            :class:`DecodeTimeoutError`. ``None`` decodes in this process, with no time limit:
            only for trusted inputs, as a hanging decoder then hangs the caller.
        chunk_frames (int, default 32): frames decoded between writes into the output.
        decoder (callable | str, optional): replaces :func:`decord_decoder`; a top-level (picklable)
            function or ``"module:function"``, called as ``decoder(path, indices, out, chunk_frames)``.

    Raises:
        VideoDecodeError: missing, empty, corrupt or truncated file, or frames beyond the end.
        DecodeTimeoutError: the timeout expired (``.pid`` is the killed child's process id).
        ValueError: invalid arguments.
    """
    return decode_with_info(url, indices=indices, stride=stride, target_fps=target_fps, start=start,
                            max_frames=max_frames, size=size, timeout_s=timeout_s,
                            chunk_frames=chunk_frames, decoder=decoder)[0]


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
