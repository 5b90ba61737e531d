"""Streaming video reading with PyAV: real footage decoded one frame at a time, with its metadata.

:mod:`genprop.video` decodes a whole clip into one array, which a long 720p/1080p video does not
fit. :class:`VideoReader` yields frames from a decoding thread through a bounded queue, and
:class:`genprop.video_writer.VideoWriter` encodes them as they come, so neither ever holds the video. The writer keeps
what propagation must not change: colour tags, display rotation, (variable) timestamps, and the
audio, copied without re-encoding. Conventions as in :mod:`genprop.video`: (H, W, 3) uint8 RGB,
exact :class:`~fractions.Fraction` rates, :class:`~genprop.errors.VideoDecodeError` naming the URL.

Colour (read in PyAV 18.1's ``av/video/reformatter.py``, checked by experiment): ``reformat``
calls ``sws_scale_frame``, which takes the YUV matrix and range from the frame's ``colorspace`` /
``color_range`` tags. ``src_colorspace``/``dst_colorspace`` are swscale ``SWS_CS_*`` numbers
(``Colorspace``), not ffmpeg's ``AVCOL_SPC_*`` (equal only for BT.709 = 1); PyAV writes them into
those tags before scaling, and ``None`` keeps the frame's tag. Untagged means BT.601 and limited
range, both ways. Decoded frames carry the bitstream's tags, so PyAV's default already honours
them; we pass the stream's tags explicitly through one AVCOL -> SWS map, shared with the writer.
``from_ndarray`` RGB frames are untagged, so the writer must name the destination matrix and
range, or it gets BT.601 limited whatever the stream is tagged.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import Colorspace

from genprop.errors import DecodeTimeoutError, VideoDecodeError
from genprop.video import local_video, open_container

# ffmpeg's AVColorSpace -> swscale's matrix. BT.2020 constant-luminance has no swscale matrix;
# the non-constant one is the nearest. Anything else (unspecified included) is left to the frame.
_SWS_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601,
               6: Colorspace.SMPTE170M, 7: Colorspace.SMPTE240M, 9: Colorspace.BT2020,
               10: Colorspace.BT2020}
_RGB, _UNSPECIFIED = 0, 2  # AVCOL_SPC_RGB, AVCOL_SPC_UNSPECIFIED
# One scaler thread: the decoder already runs frame threads and the consumer works meanwhile;
# swscale's own threads made 720p conversion slower on 2 cores (~500 vs ~850 fps, measured).
_SWS_THREADS = 1
# How often a blocked producer looks at the stop event: bounds how long close() waits for it.
_POLL_S = 0.05
_MAX_REASON = 500


@dataclass(frozen=True)
class StreamInfo:
    """What :func:`probe_stream` finds in a video's first video stream.

    Args:
        num_frames (int): from the container header, else counted by demuxing packets.
        height, width (int): coded frame size as decoded (before any display rotation).
        fps (Fraction): average frame rate. time_base (Fraction): the unit of pts.
        duration_s (float): stream duration, else container duration, else ``num_frames / fps``.
        colorspace, color_primaries, color_trc, color_range (int): ffmpeg's ``AVCOL_*`` tags
            (2 = unspecified for the first three, 0 for the range).
        rotation (int): counter-clockwise display rotation in degrees, as PyAV's
            ``VideoFrame.rotation`` reports the display matrix (0 when none).
        has_audio (bool), pix_fmt (str): an audio stream exists; the decoder's pixel format.
    """

    num_frames: int
    height: int
    width: int
    fps: Fraction
    time_base: Fraction
    duration_s: float
    colorspace: int
    color_primaries: int
    color_trc: int
    color_range: int
    rotation: int
    has_audio: bool
    pix_fmt: str


@dataclass(frozen=True)
class DecodedFrame:
    """One frame from :class:`VideoReader`: 0-based ``index`` in presentation order, ``pts`` in
    ``info.time_base`` units as in the container (or None), and the (H, W, 3) uint8 RGB ``image``."""

    index: int
    pts: int | None
    image: np.ndarray


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip()}"[:_MAX_REASON]


def _probe_path(path: str, url: str) -> StreamInfo:
    """:func:`probe_stream` of a local file; ``url`` is only used in errors."""
    with open_container(path, url) as container:
        stream = container.streams.video[0]
        cc, tb = stream.codec_context, stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or not cc.height or not cc.width:
            raise VideoDecodeError(url, "the video stream states no frame rate or no frame size")
        # PyAV 18 exposes the display matrix only as frame side data (the decoder copies the
        # stream's onto every frame), so the first frame is decoded; it also proves decodability.
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as e:
            raise VideoDecodeError(url, f"cannot decode the first frame ({_reason(e)})") from e
        if first is None:
            raise VideoDecodeError(url, "the video has no frames")
        num_frames = int(stream.frames or 0)
        duration_s = (float(stream.duration * tb) if stream.duration and tb else
                      container.duration / av.time_base if container.duration else None)
        fields = dict(height=cc.height, width=cc.width, fps=Fraction(rate),
                      time_base=Fraction(tb) if tb else 1 / Fraction(rate),
                      colorspace=int(cc.colorspace), color_primaries=int(cc.color_primaries),
                      color_trc=int(cc.color_trc), color_range=int(cc.color_range),
                      rotation=int(first.rotation), has_audio=bool(container.streams.audio),
                      pix_fmt=cc.pix_fmt or first.format.name)
    if num_frames <= 0:  # e.g. Matroska: count packets by demuxing, without decoding
        with open_container(path, url) as container:
            try:
                num_frames = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
            except av.FFmpegError as e:
                raise VideoDecodeError(url, f"cannot demux ({_reason(e)})") from e
    duration_s = float(num_frames / fields["fps"]) if duration_s is None else duration_s
    return StreamInfo(num_frames=num_frames, duration_s=duration_s, **fields)


def probe_stream(url: str) -> StreamInfo:
    """Frame count, size, exact rate, time base, colour tags, rotation and audio of a video.

    Args:
        url (str): plain path, ``file://`` or ``s3://`` URL (remote files are copied locally first).

    Raises:
        VideoDecodeError: missing, empty or unreadable file, or no video stream.
    """
    with local_video(url) as path:
        return _probe_path(path, url)


_END = object()  # the producer's last item after the final frame
_CLOSED = object()  # wakes a consumer blocked in get() when close() runs in another thread


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class VideoReader:
    """Context manager. Iterating (once) yields :class:`DecodedFrame` in presentation order,
    decoded and converted to RGB by a daemon thread into a bounded queue.

    Args:
        url (str): plain path, ``file://`` or ``s3://`` URL (remote: copied locally first, the
            copy removed on :meth:`close`).
        timeout_s (float | None, default 120): longest wait for each next frame before
            :class:`DecodeTimeoutError`; the stuck thread is abandoned. ``None``: wait forever.
        queue_frames (int, default 8): frames decoded ahead of the consumer (the memory bound).

    Attributes: ``info`` (:class:`StreamInfo`), ``local_path`` (the local file being read).

    Raises:
        VideoDecodeError: from the constructor for a missing/unreadable/non-video file; from
            iteration for corrupt or truncated data, after the frames before the damage.
    """

    def __init__(self, url: str, *, timeout_s: float | None = 120.0, queue_frames: int = 8):
        if queue_frames < 1:
            raise ValueError(f"queue_frames must be >= 1, got {queue_frames}")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive or None, got {timeout_s}")
        self.url, self.timeout_s = str(url), timeout_s
        self._queue: queue.Queue = queue.Queue(queue_frames)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = self._abandoned = False
        self._stack = contextlib.ExitStack()
        try:
            self.local_path = self._stack.enter_context(local_video(self.url))
            self.info = _probe_path(self.local_path, self.url)
            self._container = open_container(self.local_path, self.url)
        except BaseException:
            self._stack.close()
            raise
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads: several times faster
        # The stream's matrix and range where tagged; None leaves the frame's own tags.
        self._rgb_args = dict(format="rgb24", threads=_SWS_THREADS,
                              src_colorspace=_SWS_MATRIX.get(self.info.colorspace),
                              src_color_range=self.info.color_range or None)

    def _source(self) -> Iterator[DecodedFrame]:
        """The frames, decoded and converted; runs in the decoding thread.

        The seam for tests (a stand-in slow or failing decoder replaces this method). FFmpeg
        reports truncation without an error: the demuxer ends early, or flags a partial packet.
        """
        packets = index = 0
        for packet in self._container.demux(self._stream):
            damaged = packet.is_corrupt
            packets += bool(packet.size)  # the last, empty packet only flushes the decoder
            # At damage, flush the decoder (None) for the frames before it, then stop.
            for frame in self._stream.decode(None if damaged else packet):
                # A view of the converted frame; rows are padded (a copy is made) for some widths.
                image = np.ascontiguousarray(frame.to_ndarray(**self._rgb_args))
                yield DecodedFrame(index, frame.pts, image)
                index += 1
            if damaged:
                raise EOFError(f"packet {packets - 1} is damaged (a truncated file?)")
        if packets < self.info.num_frames or index == 0:
            raise EOFError(f"the file ends after {packets} of the {self.info.num_frames} packets "
                           f"the container indexes ({index} frames decoded): truncated?")

    def _put(self, item) -> bool:
        """Queue ``item`` unless stopped first; False when stopped."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=_POLL_S)
                return True
        return False

    def _produce(self) -> None:
        try:
            with contextlib.closing(self._source()) as frames:
                for item in frames:
                    if not self._put(item):
                        return
            self._put(_END)
        except BaseException as e:  # re-raised in the consumer
            self._put(_Failure(e))
        finally:
            self._container.close()  # this thread owns the container once it runs

    def __iter__(self) -> Iterator[DecodedFrame]:
        if self._thread is not None or self._closed:
            raise RuntimeError(f"{self.url}: a VideoReader can be iterated only once")
        self._thread = threading.Thread(target=self._produce, name="genprop-decode", daemon=True)
        self._thread.start()
        return self._consume()

    def _consume(self) -> Iterator[DecodedFrame]:
        last = -1
        try:
            while not self._closed:
                try:
                    item = self._queue.get(timeout=self.timeout_s)
                except queue.Empty:
                    self._abandoned = True  # stuck in native code: never join it
                    self._stop.set()
                    where = f"after frame {last}" if last >= 0 else "from the start of decoding"
                    raise DecodeTimeoutError(self.url, f"no frame within {self.timeout_s:g} s {where}"
                                             " (decoder stuck?); the decoding thread was abandoned")
                if item is _END or item is _CLOSED:
                    return
                if isinstance(item, _Failure):
                    e = item.error
                    if isinstance(e, VideoDecodeError):
                        raise e
                    raise VideoDecodeError(self.url, f"decoding failed at frame {last + 1} "
                                           f"({_reason(e)})") from e
                last = item.index
                yield item
        finally:
            self.close()  # single pass: leaving the loop early ends the reader

    def close(self) -> None:
        """Stop the decoding thread (promptly, even mid-video), close the file, drop a local copy."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is None:
            self._container.close()
        else:
            # Drain so a producer blocked on a full queue sees the stop event at once, and the
            # queued frames are freed now rather than with the reader.
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            if not self._abandoned:  # it stops within _POLL_S plus one frame's decode, unless
                self._thread.join(self.timeout_s)  # stuck: then it is abandoned after timeout_s
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_CLOSED)
        self._stack.close()  # on Linux an abandoned thread keeps reading the unlinked copy

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
