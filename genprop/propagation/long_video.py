"""Long videos: overlapping windows, each starting from a generated frame, overlaps blended, drift measured.

Window k covers frames [s_k, e_k) with s_{k+1} = e_k - overlap. Window 0 gives G the edited first
frame; window k > 0 gives G the generated frame s_k (the first frame of the overlap, already
produced by window k - 1), and gives the SCE the original frames [s_k, e_k), re-encoded. In the
overlap both windows have a frame; they are blended with linear weights (j + 1) / (overlap + 1)
for the new window, so frame s_k keeps mostly the earlier window and the hand-over is smooth.
Drift: PSNR_m (outside the predicted edit region) of each window's output against the original.
"""

from __future__ import annotations

from typing import Callable

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


def run_windows(sample: WindowSampler, source: torch.Tensor, first_frame: torch.Tensor, window: int,
                overlap: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Propagate over overlapping windows.

    Args:
        sample (WindowSampler): samples one window.
        source (Tensor): (1, T, 3, h, w) the original video at the working size.
        first_frame (Tensor): (1, 3, h, w) the edited first frame.
        window (int), overlap (int): see :func:`window_spans`.

    Returns:
        (video (1, T, 3, h, w), mask (T, h', w'), spans).
    """
    t = source.shape[1]
    spans = window_spans(t, window, overlap)
    video, mask = None, None
    for k, (s, e) in enumerate(spans):
        first = first_frame if k == 0 else video[:, s]
        out, m = sample(source[:, s:e], first, k)
        if k == 0:
            video = out.new_zeros((1, t, *out.shape[2:]))
            mask = m.new_zeros((t, *m.shape[1:]))
            video[:, s:e], mask[s:e] = out, m
            continue
        n = spans[k - 1][1] - s  # frames shared with the previous window
        w = torch.arange(1, n + 1, dtype=out.dtype) / (n + 1)  # weight of the new window
        video[:, s:s + n] = (1 - w.view(1, n, 1, 1, 1)) * video[:, s:s + n] + w.view(1, n, 1, 1, 1) * out[:, :n]
        mask[s:s + n] = (1 - w.view(n, 1, 1)) * mask[s:s + n] + w.view(n, 1, 1) * m[:n]
        video[:, s + n:e], mask[s + n:e] = out[:, n:], m[n:]
    return video, mask, spans


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
    rows = [{"index": k, "start": s, "end": e,
             "psnr_m": metrics.psnr_m(output[s:e], original[s:e], edit_mask[s:e])}
            for k, (s, e) in enumerate(spans)]
    first, last = rows[0]["psnr_m"], rows[-1]["psnr_m"]
    drift = None if len(rows) < 2 or first is None or last is None else round(first - last, 4)
    return {"windows": rows, "drift_db": drift}
