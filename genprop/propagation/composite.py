"""Native-resolution composite: the input's own pixels outside the edit, the generated content inside.

The model runs at a small working size; upsampling its frames to the input's size would replace
every input pixel with an upscale (a 40x24 working frame keeps nothing of a 720p frame's detail).
So each output frame is assembled at the input's resolution from two layers:

- the *region*: where the edit lives in this frame, decided at the working size, upsampled
  bilinearly to the input size and thresholded at one half. "diff" (:class:`DiffRegion`): the
  edit as it moves — in frame 1 the pixels the edit changed; in every later frame the connected
  parts of where the generated frame differs from the source frame (by more than
  ``region_threshold`` in some channel) that touch the previous frame's region grown by
  ``REACH_PX`` working pixels, then grown by ``region_dilate`` so pixels the edit covers in part are
  in. A difference that is not connected to the edit through time is the model's reconstruction
  error (a procedural model on real footage differs by 20-40 levels here and there, and more as
  windows chain), not the edit: those pixels stay the input's. "mpd": the MPD's mask at
  ``mask_threshold``;
- the *alpha*: the region blurred by a Gaussian of ``feather_px`` radius, taken where it exceeds the
  region, so the seam blends over at most ``feather_px`` pixels outside the region and the region
  itself is the generated layer in full.

Output = alpha * generated (bilinear upsample of the working frame) + (1 - alpha) * input. Outside
the region grown by the feather, the output is the decoded input exactly. Work is done inside the
region's bounding box only (grown by the feather), so a small edit costs little at 4K and the null
edit (an empty region) costs a comparison at the working size. The first frame's generated layer is
the user's edited first frame itself (G is conditioned on exactly it), so frame 1 keeps the edit's
own detail; its region is the union of the working-size rule and where the edit changed the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from genprop.propagation.tracking import edit_region


# Working pixels the edit may move between two frames (at 720p and a 24x40 working frame, one is 32 input pixels).
REACH_PX = 2


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    if not px or not mask.any():
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


class DiffRegion:
    """The "diff" edit region frame by frame, at the working size (see the module docstring).

    Args:
        threshold (int): max-channel difference (0-255) from the source that counts as changed.
        dilate (int): working pixels the region grows by.
        reach (int, default REACH_PX): working pixels the edit may move from one frame to the next.
    """

    def __init__(self, threshold: int, dilate: int, reach: int = REACH_PX):
        self.threshold, self.dilate, self.reach = threshold, dilate, reach
        self.previous: np.ndarray | None = None

    def first(self, edit: np.ndarray) -> np.ndarray:
        """Frame 1: ``edit`` (h, w) bool, where the first-frame edit changed the frame (working size); returns
        the region (h, w) bool."""
        self.previous = edit.copy()
        return _grow(edit, self.dilate)

    def next(self, generated: np.ndarray, source: np.ndarray) -> np.ndarray:
        """A later frame: (h, w, 3) uint8 generated and source frames -> the region (h, w) bool."""
        changed = diff_region(generated, source, self.threshold, 0)
        seeds = _grow(self.previous, self.reach)
        region = np.zeros_like(changed)
        if changed.any() and seeds.any():
            n, labels = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
            keep = np.unique(labels[seeds & changed])
            region = np.isin(labels, keep[keep > 0])
        self.previous = region
        return _grow(region, self.dilate)


def diff_region(generated: np.ndarray, source: np.ndarray, threshold: int, dilate: int) -> np.ndarray:
    """(h, w) bool: working pixels whose max-channel difference exceeds ``threshold``, dilated by ``dilate``.

    Args:
        generated (np.ndarray), source (np.ndarray): (h, w, 3) uint8 at the working size.
        threshold (int): 0-255. dilate (int): pixels (square structuring element).
    """
    region = np.abs(generated.astype(np.int16) - source.astype(np.int16)).max(axis=-1) > threshold
    if dilate and region.any():
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        region = cv2.dilate(region.astype(np.uint8), kernel) > 0
    return region


@dataclass(frozen=True)
class Compositor:
    """Assembles output frames at the input size (see the module docstring).

    Args:
        input_size (tuple[int, int]): (H, W) of the input.
        work_size (tuple[int, int]): (h, w) the model ran at.
        feather_px (int, default 6): the seam's width outside the region, in input pixels.
    """

    input_size: tuple[int, int]
    work_size: tuple[int, int]
    feather_px: int = 6

    def upsample_region(self, region: np.ndarray) -> np.ndarray:
        """(h, w) bool or [0, 1] float at the working size -> (H, W) bool at the input size (bilinear, > 0.5)."""
        H, W = self.input_size
        if not region.any():
            return np.zeros((H, W), bool)
        up = cv2.resize(region.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        return up > 0.5

    def _box(self, region: np.ndarray) -> tuple[slice, slice] | None:
        ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
        if not len(ys):
            return None
        H, W = self.input_size
        pad = self.feather_px + 1
        return (slice(max(0, ys[0] - pad), min(H, ys[-1] + pad + 1)),
                slice(max(0, xs[0] - pad), min(W, xs[-1] + pad + 1)))

    def generated_layer(self, generated: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        """The working frame (h, w, 3) uint8 upsampled bilinearly to the input size, inside ``box`` only."""
        H, W = self.input_size
        h, w = generated.shape[:2]
        ys, xs = box
        # Pixel-centre mapping of cv2.resize: x_work = (x + 0.5) * w / W - 0.5, applied to the box's pixels only.
        mx = (np.arange(xs.start, xs.stop, dtype=np.float32) + 0.5) * (w / W) - 0.5
        my = (np.arange(ys.start, ys.stop, dtype=np.float32) + 0.5) * (h / H) - 0.5
        map_x = np.broadcast_to(mx[None, :], (len(my), len(mx)))
        map_y = np.broadcast_to(my[:, None], (len(my), len(mx)))
        return cv2.remap(generated, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def __call__(self, native: np.ndarray, generated: np.ndarray | None, region: np.ndarray,
                 layer: np.ndarray | None = None) -> np.ndarray:
        """One output frame.

        Args:
            native (np.ndarray): (H, W, 3) uint8, the decoded input frame.
            generated (np.ndarray | None): (h, w, 3) uint8, the model's frame at the working size (or None with
                ``layer``).
            region (np.ndarray): (H, W) bool, the edit region at the input size (:meth:`upsample_region`).
            layer (np.ndarray | None): (H, W, 3) uint8, a generated layer already at the input size (frame 1: the
                edited first frame), used instead of upsampling ``generated``.

        Returns:
            (H, W, 3) uint8; ``native`` itself (not a copy) when the region is empty.
        """
        box = self._box(region)
        if box is None:
            return native
        ys, xs = box
        gen = layer[ys, xs] if layer is not None else self.generated_layer(generated, box)
        r = region[ys, xs].astype(np.float32)
        alpha = r
        if self.feather_px:
            k = 2 * self.feather_px + 1
            alpha = np.maximum(r, cv2.GaussianBlur(r, (k, k), self.feather_px / 2.0,
                                                   borderType=cv2.BORDER_CONSTANT))
        out = native.copy()
        # (a * gen + (1 - a) * native) / 1 in one pass; a = 1 gives gen and a = 0 native exactly
        out[ys, xs] = cv2.blendLinear(np.ascontiguousarray(gen), np.ascontiguousarray(native[ys, xs]), alpha,
                                      1.0 - alpha)
        return out


class EditRegion:
    """The edit region of each frame at the input's size, from the configured source (see the module docstring).

    Args:
        kind (str): "diff", "mpd" or "none" (every pixel is the edit).
        fmap (FrameMap): the input <-> working size map. compositor (Compositor): its ``upsample_region``.
        edited_first_frame (np.ndarray): (H, W, 3) uint8, the edited first frame.
        threshold (int), dilate (int): the diff region's (:class:`DiffRegion`).
        mask_threshold (float): the MPD mask value that counts as edited.
    """

    def __init__(self, kind: str, fmap, compositor: Compositor, edited_first_frame: np.ndarray, threshold: int,
                 dilate: int, mask_threshold: float):
        self.kind, self.fmap, self.compositor, self.edited = kind, fmap, compositor, edited_first_frame
        self.diff = DiffRegion(threshold, dilate)
        self.mask_threshold = mask_threshold

    def __call__(self, t: int, native: np.ndarray, generated: np.ndarray, source: np.ndarray,
                 mpd: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``'s region: (H, W) bool at the input size and (h, w) bool at the working size.

        Args:
            t (int): the frame's index (frame 0 also takes where the edit changed the frame).
            native (np.ndarray): (H, W, 3) uint8 input frame. generated, source (np.ndarray): (h, w, 3) uint8.
            mpd (np.ndarray | None): (H, W) float32, the MPD's mask (kind "mpd").
        """
        edit = edit_region(native, self.edited) if t == 0 else None
        if self.kind == "diff":
            work = self.diff.first(self.fmap.mask_to_working(edit)) if t == 0 else self.diff.next(generated, source)
            region = self.compositor.upsample_region(work)
        elif self.kind == "mpd":
            region = mpd >= self.mask_threshold
            work = self.fmap.mask_to_working(region)
        else:
            region, work = np.ones(native.shape[:2], bool), np.ones(generated.shape[:2], bool)
        return (region | edit if edit is not None else region), work
