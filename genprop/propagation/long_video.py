"""Long videos: overlapping windows, each starting from a generated frame, overlaps blended, drift measured.

Window k covers frames [s_k, e_k) with s_{k+1} = e_k - overlap. Window 0 gives G the edited first
frame; window k > 0 gives G the generated frame s_k (the first frame of the overlap, already
produced by window k - 1), and gives the SCE the original frames [s_k, e_k), re-encoded. Frames
stream through (:func:`stream_windows`): only one window and its overlap are held at a time. In the
overlap both windows have a frame; they are blended with linear weights (j + 1) / (overlap + 1)
for the new window, so frame s_k keeps mostly the earlier window and the hand-over is smooth.
Drift: PSNR_m (outside the predicted edit region) of each window's output against the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from genprop import metrics


def window_spans(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """The [start, end) frame spans of the windows covering ``num_frames`` frames.

    Args:
        num_frames (int): frames of the video.
        window (int): frames per window (the last may be shorter).
        overlap (int): frames shared by consecutive windows (< window).
    """
    if num_frames < 1 or window < 1:
        raise ValueError(f"need num_frames >= 1 and window >= 1, got {num_frames}, {window}")
    if num_frames <= window:
        return [(0, num_frames)]
    if not 1 <= overlap < window:
        raise ValueError(f"overlap must be in [1, window), got {overlap} with window {window}")
    spans, start = [], 0
    while True:
        end = min(start + window, num_frames)
        spans.append((start, end))
        if end == num_frames:
            return spans
        start = end - overlap


# sample(source window (1, t, 3, h, w), first frame (1, 3, h, w), window index) ->
#   (video (1, t, 3, h, w), mask (t, h', w'))
WindowSampler = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FinishedFrames:
    """Frames a window finished (blended with the previous window where they overlap), in order.

    Attributes:
        window (int): the window's index. start (int): the index of the first frame here.
        items (list): the input items of these frames (what the frame iterator gave: e.g. decoded frames).
        source (Tensor): (m, 3, h, w) their working-size source frames in [-1, 1].
        video (Tensor): (m, 3, h, w) the generated frames. mask (Tensor): (m, h', w') the MPD's mask.
        span (tuple[int, int]): the window's own [start, end).
    """

    window: int
    start: int
    items: list
    source: torch.Tensor
    video: torch.Tensor
    mask: torch.Tensor
    span: tuple[int, int]


def stream_windows(sample: WindowSampler, items: Iterable, to_working: Callable[[list], torch.Tensor],
                   first_frame: torch.Tensor, window: int, overlap: int) -> Iterator[FinishedFrames]:
    """Propagate over overlapping windows of a frame stream, holding one window (and its overlap) at a time.

    The windows are :func:`window_spans`'s for the stream's length, found as the stream is read (one frame of
    look-ahead tells the last window). Window k's last ``overlap`` frames are held back until window k + 1 has
    blended them; every other frame is yielded as soon as its window is done.

    Args:
        sample (WindowSampler): samples one window.
        items (Iterable): the input frames in order (any objects ``to_working`` takes).
        to_working (callable): a list of items -> (1, t, 3, h, w) working-size source in [-1, 1].
        first_frame (Tensor): (1, 3, h, w) the edited first frame (G's first frame of window 0).
        window (int), overlap (int): see :func:`window_spans`.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    it = iter(items)
    held: list = []  # items of frames carried from the previous window (its overlap)
    held_src = held_out = held_mask = None
    start, k = 0, 0
    ahead = next(it, _END)
    if ahead is _END:
        raise ValueError("the video has no frames")
    while True:
        new = []
        while len(held) + len(new) < window and ahead is not _END:
            new.append(ahead)
            ahead = next(it, _END)
        last = ahead is _END
        if not last and not 1 <= overlap < window:
            raise ValueError(f"overlap must be in [1, window), got {overlap} with window {window}")
        src_new = to_working(new)[0]  # (t_new, 3, h, w)
        src = src_new if not held else torch.cat([held_src, src_new])
        first = first_frame if k == 0 else held_out[:1]  # (1, 3, h, w)
        out, m = sample(src[None], first, k)
        out = out[0]
        n = len(held)
        if n:  # blend the overlap: the new window's weight (j + 1) / (n + 1)
            w = torch.arange(1, n + 1, dtype=out.dtype) / (n + 1)
            out = torch.cat([(1 - w.view(n, 1, 1, 1)) * held_out + w.view(n, 1, 1, 1) * out[:n], out[n:]])
            m = torch.cat([(1 - w.view(n, 1, 1)) * held_mask + w.view(n, 1, 1) * m[:n], m[n:]])
        frames = held + new
        keep = 0 if last else overlap  # frames held for the next window
        done = len(frames) - keep
        yield FinishedFrames(window=k, start=start, items=frames[:done], source=src[:done], video=out[:done],
                             mask=m[:done], span=(start, start + len(frames)))
        if last:
            return
        held, held_src, held_out, held_mask = frames[done:], src[done:], out[done:], m[done:]
        start += done
        k += 1


_END = object()


def drift_report(output: np.ndarray, original: np.ndarray, edit_mask: np.ndarray,
                 spans: list[tuple[int, int]]) -> dict:
    """PSNR_m of each window against the original (outside ``edit_mask``), and the drift between them.

    Args:
        output (np.ndarray), original (np.ndarray): (T, H, W, 3) uint8.
        edit_mask (np.ndarray): (T, H, W) bool, the predicted edit region.
        spans (list): the windows' [start, end).

    Returns:
        {"windows": [{"index", "start", "end", "psnr_m"}], "drift_db": first - last window's PSNR_m (None if
        either is unavailable or there is one window)}.
    """
    return drift_of_windows([{"index": k, "start": s, "end": e,
                              "psnr_m": metrics.psnr_m(output[s:e], original[s:e], edit_mask[s:e])}
                             for k, (s, e) in enumerate(spans)])


def drift_of_windows(rows: list[dict]) -> dict:
    """``{"windows": rows, "drift_db": first - last window's PSNR_m}`` (None if either is unavailable or there is
    one window), from per-window rows ``{"index", "start", "end", "psnr_m"}``."""
    first, last = rows[0]["psnr_m"], rows[-1]["psnr_m"]
    drift = None if len(rows) < 2 or first is None or last is None else round(first - last, 4)
    return {"windows": rows, "drift_db": drift}
