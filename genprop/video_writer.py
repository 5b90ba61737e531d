"""Streaming H.264 mp4 writing with PyAV: frames encoded as they come, the input's metadata kept.

:class:`VideoWriter` is the other half of :class:`genprop.video_stream.VideoReader`: it keeps
what a propagation must not change about a video — colour tags (and the same YUV matrix and
range as the reader, so pixels round-trip), display rotation, (variable) timestamps, and the audio
track, copied without re-encoding and interleaved by time — and writes atomically. Memory does not
grow with the video's length. Colour handling: see :mod:`genprop.video_stream`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import ColorRange

from genprop import storage
from genprop.video import local_video, open_container, parse_fps
from genprop.video_stream import _RGB, _SWS_MATRIX, _SWS_THREADS, _UNSPECIFIED, StreamInfo

MODES = ("crf", "lossless", "rgb-lossless")


class VideoWriter:
    """Context manager writing an mp4 atomically: frames go to a temp file; on a clean
    ``__exit__``/:meth:`close` it is moved to ``url`` with :func:`storage.put_file`; on an
    exception (``__exit__`` with one) or :meth:`abort` nothing is written at ``url``.

    libx264 with ``x264-params mbtree=0`` (reruns write identical bytes, as
    :func:`genprop.video.encode`) and ``movflags +faststart``. Memory does not grow with the
    video (but for the muxer's index, some bytes per frame).

    Args:
        url (str): destination (plain path, ``file://``, ``s3://``).
        fps (Fraction | int | str): exact (average) frame rate.
        width, height (int): frame size; frames are never resized.
        mode (str, default "crf"): ``"crf"``: yuv420p at ``crf`` (yuv444p when a side is odd);
            ``"lossless"``: qp 0 yuv444p (RGB round-trips up to YUV rounding, 1-2 levels);
            ``"rgb-lossless"``: libx264rgb qp 0 on rgb24, decoded RGB == written RGB exactly.
        crf (int, default 12): x264 constant rate factor (0-51) for ``"crf"``.
        like (StreamInfo, optional): copy the input's colour tags (and use its matrix/range for
            RGB->YUV, the inverse of :class:`VideoReader`), display rotation and time base
            (``write(pts=...)`` is then in its units). ``"rgb-lossless"`` keeps primaries and
            transfer only (its matrix is RGB, full range).
        audio_from (str, optional): path or URL whose first audio stream (if any) is copied
            whole, without re-encoding, interleaved by time as frames are written.
        grey (bool, default False): a mask video: ``write`` takes (H, W) or (H, W, 3) grey
            (channel 0 is used), stored qp 0 yuv444p full range: every level is exact.

    Raises:
        ValueError: bad arguments (naming ``url``). VideoDecodeError: unreadable ``audio_from``.
    """

    def __init__(self, url: str, fps, width: int, height: int, *, mode: str = "crf", crf: int = 12,
                 like: StreamInfo | None = None, audio_from: str | None = None, grey: bool = False):
        self.url = str(url)
        for bad, what in ((mode not in MODES, f"mode must be one of {MODES}, got {mode!r}"),
                          (not 0 <= int(crf) <= 51, f"crf must be in 0..51, got {crf}"),
                          (min(int(width), int(height)) < 1, f"bad size {width}x{height}")):
            if bad:
                raise ValueError(f"{url}: {what}")
        try:
            self.fps = parse_fps(fps)
        except ValueError as e:
            raise ValueError(f"{url}: {e}") from None
        self.width, self.height, self.grey = int(width), int(height), bool(grey)
        self.mode = "lossless" if grey else mode
        self.time_base = like.time_base if like is not None else 1 / self.fps
        self._count, self._first_pts, self._last_pts, self._prev_step = 0, None, None, None
        self._with_pts, self._like, self._done = None, like, False
        self._stack = contextlib.ExitStack()
        self._tmp = tempfile.mkdtemp(prefix="genprop-encode-")
        try:
            self._open(crf, like, audio_from)
        except BaseException:
            self.abort()
            raise

    def _open(self, crf: int, like: StreamInfo | None, audio_from: str | None) -> None:
        self._path = os.path.join(self._tmp, "video.mp4")
        # The movie timescale (edit lists) is 1/1000 s by default, which rounds the duration;
        # use the video track's (mp4 doubles the time base's denominator up to >= 10000).
        timescale = self.time_base.denominator
        while timescale < 10000:
            timescale *= 2
        # Once the audio ends, the muxer holds video for max_interleave_delta (10 s by default)
        # waiting for more: 1 s bounds that memory.
        self._out = self._stack.enter_context(av.open(self._path, "w", format="mp4", options={
            "movflags": "+faststart", "movie_timescale": str(timescale),
            "max_interleave_delta": "1000000"}))
        rgb = self.mode == "rgb-lossless"
        stream = self._out.add_stream("libx264rgb" if rgb else "libx264", rate=self.fps)
        odd = self.width % 2 or self.height % 2
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "rgb24" if rgb else "yuv420p" if self.mode == "crf" and not odd else "yuv444p"
        stream.time_base = stream.codec_context.time_base = self.time_base
        # mbtree off: with it x264's output differed from run to run (see genprop.video.encode).
        stream.options = {**({"crf": str(int(crf))} if self.mode == "crf" else {"qp": "0"}),
                          "x264-params": "mbtree=0"}
        cc = stream.codec_context
        matrix, rng = _UNSPECIFIED, 0
        if like is not None:
            cc.color_primaries, cc.color_trc = like.color_primaries, like.color_trc
            matrix, rng = like.colorspace, like.color_range
            if like.rotation:
                stream.set_display_rotation(like.rotation)
        if matrix == _RGB:  # an RGB input's tags on a YUV stream would misname its matrix
            matrix = _UNSPECIFIED
        if self.grey:
            rng = ColorRange.JPEG  # full range: Y = level exactly; chroma 128 makes the matrix moot
        if rgb:
            matrix, rng = _RGB, ColorRange.JPEG
        cc.colorspace, cc.color_range = matrix, rng
        self._yuv_args = dict(format=stream.pix_fmt, threads=_SWS_THREADS,
                              dst_colorspace=_SWS_MATRIX.get(matrix), dst_color_range=rng or None)
        self._video = stream
        self._audio_out = self._audio_next = None
        if audio_from is not None:
            path = self._stack.enter_context(local_video(audio_from))
            src = self._stack.enter_context(open_container(path, audio_from, video=False))
            if src.streams.audio:
                a_in = src.streams.audio[0]
                self._audio_out = self._out.add_stream_from_template(a_in)
                self._audio_packets = src.demux(a_in)  # lazy: one packet in memory at a time
                self._audio_next = self._next_audio()

    def _next_audio(self):
        for packet in self._audio_packets:
            if packet.size and packet.dts is not None:  # the final empty packet is a decoder flush
                return packet
        return None

    def _mux_audio(self, until_s: float | None) -> None:
        """Copy audio packets that start before ``until_s`` (all of them for None)."""
        while self._audio_next is not None:
            p = self._audio_next
            if until_s is not None and float(p.dts * p.time_base) > until_s:
                return
            p.stream = self._audio_out  # rebased to the output's time base by mux
            self._out.mux(p)
            self._audio_next = self._next_audio()

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame.

        Args:
            image (np.ndarray): (H, W, 3) uint8 RGB; for ``grey``, (H, W) or (H, W, 3) uint8.
            pts (int, optional): presentation time in ``like.time_base`` units (``1/fps``
                without ``like``); strictly increasing. Give it for every frame or for none;
                without it frame k is at ``k / fps``.
        """
        if self._done:
            raise ValueError(f"{self.url}: the writer is closed")
        img, shape = np.asarray(image), (self.height, self.width, 3)
        if img.dtype != np.uint8 or img.shape not in (shape, shape[:2] if self.grey else shape):
            raise ValueError(f"{self.url}: frame {self._count} must be uint8 {shape}"
                             f"{' or ' + str(shape[:2]) if self.grey else ''}, got {img.dtype} {img.shape}")
        if self._with_pts is not None and (pts is not None) != self._with_pts:
            raise ValueError(f"{self.url}: give pts for every frame or for none")
        self._with_pts = pts is not None
        if pts is None:  # k / fps in time-base units: exact when the time base divides 1/fps
            pts = round(self._count / self.fps / self.time_base)
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"{self.url}: pts must increase; frame {self._count} has {pts} "
                             f"after {self._last_pts}")
        if self.grey:
            grey = np.ascontiguousarray(img if img.ndim == 2 else img[..., 0])
            frame = av.VideoFrame.from_ndarray(grey, format="gray").reformat(**self._yuv_args)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if self.mode != "rgb-lossless":  # rgb24 goes to libx264rgb untouched
                frame = frame.reformat(**self._yuv_args)
        frame.pts, frame.time_base = pts, self.time_base
        packets = self._video.encode(frame)
        self._out.mux(packets)  # rebases them to the stream's time base (mp4 may change it)
        if packets and packets[-1].dts is not None:
            # Audio follows the encoder's output, not its input (x264 holds ~1 s back): the
            # muxer queues packets until every stream has reached a time, so audio that ran
            # ahead would wait in memory.
            self._mux_audio(float(packets[-1].dts * packets[-1].time_base))
        if self._last_pts is None:
            self._first_pts = pts
        else:
            self._prev_step = pts - self._last_pts
        self._count, self._last_pts = self._count + 1, pts

    def _last_duration(self) -> int:
        """How long the last frame lasts, in time-base units: ``like``'s end time where it is
        plausibly this frame's end (the same frames were written), else the last step or 1/fps."""
        nominal = max(1, round(1 / self.fps / self.time_base))
        if self._like is not None and self._like.duration_s > 0:
            end = self._first_pts + round(Fraction(self._like.duration_s) / self.time_base)
            if 0 < end - self._last_pts <= 4 * nominal:
                return end - self._last_pts
        return self._prev_step if self._with_pts and self._prev_step else nominal

    def close(self) -> None:
        """Flush, finish the file and move it to ``url`` (atomically). A no-op once done."""
        if self._done:
            return
        try:
            if self._count == 0:
                raise ValueError(f"{self.url}: no frames were written")
            # libx264 leaves packet durations at 0 and mp4 takes each sample's from the next dts,
            # so only the last need one: the last in presentation order sets where the video ends,
            # the last in decode order the sample total ffmpeg's average rate divides by. Left at
            # 0, ffmpeg guesses 1/fps, changing both for a variable-rate video.
            last = self._last_duration()
            packets = self._video.encode(None)  # the encoder holds the last frames back
            for packet in packets[-1:] + [p for p in packets if p.pts == self._last_pts]:
                packet.duration = last
            self._out.mux(packets)
            self._mux_audio(None)
            self._stack.close()  # writes the trailer (and the +faststart rewrite)
            storage.put_file(self._path, self.url)
        finally:
            self.abort()

    def abort(self) -> None:
        """Discard everything written; nothing appears at ``url``."""
        self._done = True
        with contextlib.suppress(Exception):  # the temp file is deleted anyway
            self._stack.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close() if exc_type is None else self.abort()


