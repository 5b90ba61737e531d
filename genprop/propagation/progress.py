"""Progress of a long propagation on stderr: windows done, frames done, frames/s and ETA.

On a terminal one bar line is redrawn in place; elsewhere (a log file, a Ray job's captured
stderr) plain lines are printed, at most one every ``interval_s`` seconds plus the last one, so a
long video does not flood a log. ``quiet`` prints nothing.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """``1:02:03`` / ``2:03`` for a duration in seconds (``?`` when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A progress reporter for one video.

    Args:
        label (str): what is being propagated (printed first; e.g. the video's file name).
        total_frames (int): frames expected (the container's count).
        total_windows (int): windows expected.
        stream: where to print (default ``sys.stderr``).
        quiet (bool, default False): print nothing.
        interval_s (float, default 5.0): least seconds between two plain lines (not on a terminal).
        clock (callable, default ``time.monotonic``): the time source.
    """

    def __init__(self, label: str, total_frames: int, total_windows: int, stream=None, quiet: bool = False,
                 interval_s: float = 5.0, clock=time.monotonic):
        self.label, self.total_frames, self.total_windows = label, max(1, total_frames), max(1, total_windows)
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.interval_s, self.clock = quiet, interval_s, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = clock()
        self.last_print = None
        self.windows = self.frames = 0

    def line(self) -> str:
        """The current state as one line (no newline)."""
        elapsed = max(self.clock() - self.start, 1e-9)
        fps = self.frames / elapsed
        left = (self.total_frames - self.frames) / fps if fps > 0 else float("nan")
        done = min(1.0, self.frames / self.total_frames)
        text = (f"window {self.windows}/{self.total_windows}, {self.frames}/{self.total_frames} frames, "
                f"{fps:.1f} frames/s, elapsed {format_duration(elapsed)}, ETA {format_duration(left)}")
        if self.tty:
            bar = "#" * int(round(24 * done))
            return f"{self.label} [{bar:<24}] {100 * done:3.0f}% {text}"
        return f"{self.label}: {text}"

    def update(self, windows: int, frames: int, final: bool = False) -> None:
        """Record ``windows`` windows and ``frames`` frames done; print when due.

        Args:
            windows (int), frames (int): totals so far (not increments).
            final (bool, default False): the run is over (always printed, ends the bar's line).
        """
        self.windows, self.frames = windows, frames
        if final:  # the container's count may have been off: the end is the truth
            self.total_frames, self.total_windows = max(1, frames), max(1, windows)
        if self.quiet:
            return
        now = self.clock()
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
        elif final or self.last_print is None or now - self.last_print >= self.interval_s:
            self.stream.write(self.line() + "\n")
        else:
            return
        self.last_print = now
        self.stream.flush()
