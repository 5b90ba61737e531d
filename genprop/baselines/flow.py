"""Dense optical flow (OpenCV Farnebäck) and backward warping, shared by the classical baselines."""

from __future__ import annotations

import cv2
import numpy as np

# Farnebäck parameters (OpenCV's documented example values; robust on small frames).
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def backward_flow(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Flow from ``current`` to ``previous`` (H, W, 2): pixel (x, y) of current came from (x, y) + flow.

    Args:
        current (np.ndarray), previous (np.ndarray): (H, W, 3) uint8 RGB frames.
    """
    a = cv2.cvtColor(current, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Backward-warp ``image`` (H, W[, C]) with ``flow`` (H, W, 2): out(x) = image(x + flow(x)) (edges replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


def propagate_layer(original: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry an edit layer (content + alpha) of frame 1 through the video by accumulated frame-to-frame flow.

    The flow is computed on the original frames (t -> t - 1) and the layer of frame t - 1 is warped
    into frame t, so motions compose over the video (accumulated warping).

    Args:
        original (np.ndarray): (T, H, W, 3) uint8.
        layer (np.ndarray): (H, W, 3) float32 edit content of frame 1.
        alpha (np.ndarray): (H, W) float32 in [0, 1], where the layer applies in frame 1.

    Returns:
        (layers (T, H, W, 3) float32, alphas (T, H, W) float32).
    """
    layers, alphas = [layer.astype(np.float32)], [alpha.astype(np.float32)]
    for t in range(1, len(original)):
        f = backward_flow(original[t], original[t - 1])
        layers.append(warp(layers[-1], f))
        alphas.append(np.clip(warp(alphas[-1], f), 0, 1))
    return np.stack(layers), np.stack(alphas)
