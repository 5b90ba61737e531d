"""Decode frames of a video file into one ``(T, H, W, 3)`` uint8 RGB array, with decord, under a timeout.

Decoding runs, by default, in a child process started with ``spawn`` that is killed when its
timeout expires: decord can hang while holding the GIL (a container that over-reports its frame
count), so no thread in the decoding process could ever stop it. The child writes frames into an
``.npy`` file in a temporary directory, which the parent reads back; nothing large is pickled.
As with any ``spawn``-based code, a script that calls :func:`decode` at import time needs the
``if __name__ == "__main__":`` guard (the child imports the parent's main module).
"""

from __future__ import annotations

import bisect
import importlib
import multiprocessing
import os
import tempfile
from typing import Callable, Sequence

import numpy as np

from genprop.errors import DataError, DecodeTimeoutError, VideoDecodeError
from genprop.video import VideoInfo, check_sampling, local_video, probe_path, resize_frame, sample_indices

# spawn, not fork: forking a threaded process (Ray workers, fsspec's event loop thread) can copy
# held locks into the child and deadlock it. forkserver would also be safe and start faster, but
# its server keeps the sys.path/environment of the first call; spawn has no hidden state.
_MP_CONTEXT = "spawn"
# Reasons sent back from the child are cut to this many characters (decord appends stack traces).
_MAX_REASON = 500

# A decoder writes the source frames ``indices`` of the local file ``path`` into ``out``
# ((T, H, W, 3) uint8, T == len(indices), resized to out's H, W), ``chunk_frames`` at a time.
Decoder = Callable[[str, Sequence[int], np.ndarray, int], None]


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
    info = probe_path(path, url)
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
    check_sampling(**request["sampling"])  # a bad call is a ValueError, not a VideoDecodeError
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
