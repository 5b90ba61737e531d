"""Where propagated frames go: into arrays (:class:`ArraySink`) or streamed into files (:class:`FileSink`).

The propagator hands each finished frame to a sink as an :class:`OutputFrame`, in order, and
computes only the layers the sink asks for (``wants``): the raw model output at the input size,
the MPD's mask, the tracked region. A file sink writes every output as it comes (the video
with the input's timestamps, colour tags, rotation and audio; the edit region as a grey mask
video), each file atomically, and the propagated video last, so its existence means the row is
complete. Nothing is held but the current frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from genprop.propagation.tracking import centre_at_half, mask_levels


@dataclass
class OutputFrame:
    """One finished frame at the input's size.

    Attributes:
        index (int): frame index. pts (int | None): its presentation timestamp (the input's time base).
        frame (np.ndarray): (H, W, 3) uint8, the output (composite, or the raw output with composite "none").
        region (np.ndarray): (H, W) bool, the edit region (where the output is not the input's own pixels).
        raw (np.ndarray | None): (H, W, 3) uint8, the model's frame upsampled (when the sink wants "raw").
        mpd (np.ndarray | None): (H, W) float32 in [0, 1], the MPD's mask (when the sink wants "mpd").
        tracked (np.ndarray | None): (H, W) bool, the painted change (colour-fill task, when it wants "track").
    """

    index: int
    pts: int | None
    frame: np.ndarray
    region: np.ndarray
    raw: np.ndarray | None = None
    mpd: np.ndarray | None = None
    tracked: np.ndarray | None = None


@dataclass
class PropagationResult:
    """What :meth:`Propagator.run` returns (everything at the input's size; the whole video in memory).

    Attributes:
        frames (np.ndarray): (T, H, W, 3) uint8 the propagated video (composite unless configured "none").
        region (np.ndarray): (T, H, W) bool, the edit region of every frame.
        mask (np.ndarray): (T, H, W) float32 in [0, 1], the MPD's mask upsampled from the latent grid.
        raw (np.ndarray): (T, H, W, 3) uint8, the model's frames upsampled (equal to ``frames`` with composite none).
        track_mask (np.ndarray | None): (T, H, W) bool, the painted change segmented (colour-fill task only).
        work_size (tuple[int, int]): the (h, w) the model ran at.
        drift (dict): per-window PSNR_m at the working size and the drift (``long_video.drift_of_windows``).
        peak_memory (dict): ``memory.peak_memory`` after the run.
        stats (dict): windows, seconds per stage, the region source.
        fps (Fraction | None): the input's frame rate, when read from a file.
    """

    frames: np.ndarray
    region: np.ndarray
    mask: np.ndarray
    raw: np.ndarray
    track_mask: np.ndarray | None
    work_size: tuple[int, int]
    drift: dict
    peak_memory: dict
    stats: dict = field(default_factory=dict)
    fps: Fraction | None = None


class ArraySink:
    """Collects every layer of every frame in memory (the in-memory :meth:`Propagator.run`)."""

    wants = frozenset({"raw", "mpd", "track"})

    def __init__(self):
        self.frames, self.regions, self.raw, self.mpd, self.tracked = [], [], [], [], []

    def add(self, f: OutputFrame) -> None:
        self.frames.append(f.frame)
        self.regions.append(f.region)
        self.raw.append(f.raw)
        self.mpd.append(f.mpd)
        self.tracked.append(f.tracked)

    def result(self, **kwargs) -> PropagationResult:
        tracked = None if self.tracked[0] is None else np.stack(self.tracked)
        return PropagationResult(frames=np.stack(self.frames), region=np.stack(self.regions),
                                 mask=np.stack(self.mpd), raw=np.stack(self.raw), track_mask=tracked, **kwargs)


class FileSink:
    """Streams the outputs into files (each written atomically; the video last).

    Args:
        out_url (str): the propagated video (mp4).
        info (StreamInfo): the input's stream (size, fps, time base, colour tags, rotation).
        audio_from (str | None): a local copy of the input, whose audio stream is copied into the video.
        mode (str, default "crf"), crf (int, default 12): the video's encoding (``PropagationConfig.output_mode``).
        mask_out (str | None): the edit region (grey mask video, 255 = edited).
        raw_out (str | None): the model's frames upsampled, without the composite (same encoding as the video).
        mpd_out (str | None): the MPD's soft mask (grey), remapped so that ``mpd_threshold`` is mid-grey.
        track_out (str | None): the painted change (colour-fill task).
        track (bool, default False): the task is colour fill (``track_out`` is written only then).
        mpd_threshold (float, default 0.5): the MPD's cut (``Propagator.mask_threshold``): a reader that cuts the
            mask video at mid-grey gets the MPD's region.
    """

    def __init__(self, out_url: str, info, audio_from: str | None = None, mode: str = "crf", crf: int = 12,
                 mask_out: str | None = None, raw_out: str | None = None, mpd_out: str | None = None,
                 track_out: str | None = None, track: bool = False, mpd_threshold: float = 0.5):
        from genprop.video_writer import VideoWriter

        self.mpd_threshold = float(mpd_threshold)

        def writer(url, **kw):
            return VideoWriter(url, info.fps, info.width, info.height, like=info, **kw)

        self.writers = {}  # name -> VideoWriter; "video" is closed last
        try:
            for name, url, kw in (("mask", mask_out, dict(grey=True)), ("mpd", mpd_out, dict(grey=True)),
                                  ("track", track_out if track else None, dict(grey=True)),
                                  ("raw", raw_out, dict(mode=mode, crf=crf)),
                                  ("video", out_url, dict(mode=mode, crf=crf, audio_from=audio_from))):
                if url:
                    self.writers[name] = writer(url, **kw)
        except BaseException:
            self.abort()
            raise
        self.wants = frozenset(n for n in ("raw", "mpd", "track") if n in self.writers)

    def add(self, f: OutputFrame) -> None:
        w = self.writers
        if "mask" in w:
            w["mask"].write(mask_levels(f.region), f.pts)  # grey writers take (H, W) levels
        if "mpd" in w:
            w["mpd"].write(mask_levels(centre_at_half(f.mpd, self.mpd_threshold)), f.pts)
        if "track" in w:
            w["track"].write(mask_levels(f.tracked), f.pts)
        if "raw" in w:
            w["raw"].write(f.raw, f.pts)
        w["video"].write(f.frame, f.pts)

    def close(self) -> None:
        """Finish every file; the video last (a row whose video exists is complete)."""
        try:
            for name, w in self.writers.items():
                if name != "video":
                    w.close()
            self.writers["video"].close()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop every unfinished file (nothing is written at their URLs)."""
        for w in self.writers.values():
            w.abort()


class BackgroundSink:
    """Runs another sink's ``add`` in a writer thread behind a bounded queue, so encoding overlaps the model.

    The codec (libx264 releases the GIL while it encodes) then works while the next window is sampled. An error
    in the writer thread is raised by the next :meth:`add` or by :meth:`close`.

    Args:
        sink (FileSink): the sink that writes.
        max_frames (int, default 8): frames queued at most (the memory bound: one window's worth).
    """

    def __init__(self, sink, max_frames: int = 8):
        import queue
        import threading

        self.sink, self.wants = sink, sink.wants
        self._queue: queue.Queue = queue.Queue(max_frames)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="genprop-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            f = self._queue.get()
            if f is None:
                return
            if self._error is None:
                try:
                    self.sink.add(f)
                except BaseException as e:  # re-raised in the caller's thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def add(self, f: OutputFrame) -> None:
        self._raise()
        self._queue.put(f)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()
        self.sink.close()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(None)
            self._thread.join()
        self.sink.abort()
