"""Map frames to the model's working size and back, so the output has the input's exact size.

How: the working size keeps the input's aspect ratio at about the backbone's working area
(``working_area`` pixels), with each side rounded to the backbone's spatial alignment (latent
factor x patch / down-sampling). Frames are resized there with ``cv2.INTER_AREA`` (shrinking) or
``INTER_LINEAR`` (growing), and the generated frames are resized back to exactly (H, W) with
``INTER_CUBIC``. Nothing is cropped or padded, so every input pixel has an output pixel and the
aspect ratio of the output is the input's; the only distortion is the rounding of the working
sides to the alignment (at most half an alignment step per side, undone on the way back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

def working_size(height: int, width: int, area: int, align: int) -> tuple[int, int]:
    """The (h, w) with h / w ~ height / width, h * w ~ area, both multiples of ``align`` (>= align).

    Args:
        height (int), width (int): the input frame size.
        area (int): the working area in pixels.
        align (int): the alignment of each side.
    """
    if height < 1 or width < 1 or area < 1 or align < 1:
        raise ValueError(f"bad sizes: {height}x{width}, area {area}, align {align}")
    h = math.sqrt(area * height / width)
    w = h * width / height
    return max(align, round(h / align) * align), max(align, round(w / align) * align)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, h, w) in [-1, 1] -> (T, h, w, 3) uint8 (exact inverse of ``u8 / 127.5 - 1``)."""
    return ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass(frozen=True)
class FrameMap:
    """The resize between an input size and a working size (both (H, W)).

    Args:
        input_size (tuple[int, int]): (H, W) of the input frames.
        work_size (tuple[int, int]): (h, w) the model runs at.
    """

    input_size: tuple[int, int]
    work_size: tuple[int, int]

    @classmethod
    def for_backbone(cls, backbone, height: int, width: int, area: int = 0) -> "FrameMap":
        """The map for frames of (height, width) on ``backbone`` (``area`` 0 = its default working area)."""
        area = area or backbone.default_working_area
        return cls((height, width), working_size(height, width, area, backbone.spatial_alignment))

    def _resize(self, img: np.ndarray, size: tuple[int, int], up_interp: int) -> np.ndarray:
        h, w = size
        if img.shape[:2] == (h, w):
            return img
        shrink = h * w < img.shape[0] * img.shape[1]
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else up_interp)

    def frame_to_working(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 at the input size -> (h, w, 3) uint8 at the working size."""
        if frame.shape[:2] != tuple(self.input_size):
            raise ValueError(f"frames are {frame.shape[0]}x{frame.shape[1]}, the map expects "
                             f"{self.input_size[0]}x{self.input_size[1]}")
        return self._resize(frame, self.work_size, cv2.INTER_LINEAR)

    def to_working(self, frames) -> torch.Tensor:
        """(T, H, W, 3) uint8 (an array or a list of frames) -> (1, T, 3, h, w) float32 in [-1, 1]."""
        out = np.stack([self.frame_to_working(f) for f in frames])
        return torch.from_numpy(out).permute(0, 3, 1, 2)[None].float() / 127.5 - 1

    def image_to_working(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float32 in [-1, 1]."""
        return self.to_working(image[None])[:, 0]

    def from_working(self, video: torch.Tensor) -> np.ndarray:
        """(1, T, 3, h, w) in [-1, 1] -> (T, H, W, 3) uint8 at the input size."""
        return np.stack([self.frame_from_working(f) for f in to_uint8(video[0])])

    def frame_from_working(self, frame: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 at the working size -> (H, W, 3) uint8 at the input size (bicubic)."""
        return self._resize(frame, self.input_size, cv2.INTER_CUBIC)

    def mask_to_working(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) bool at the input size -> (h, w) bool: the working pixels the mask covers at all (area > 0)."""
        if mask.shape != tuple(self.input_size):
            raise ValueError(f"mask is {mask.shape}, the map expects {tuple(self.input_size)}")
        if not mask.any():
            return np.zeros(self.work_size, bool)
        h, w = self.work_size
        return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0

    def mask_from_grid(self, mask: torch.Tensor) -> np.ndarray:
        """A mask on any grid, (T, h', w') -> (T, H, W) float32 in [0, 1] (bilinear; the MPD's latent grid)."""
        m = mask.float().clamp(0, 1)[:, None]  # (T, 1, h', w')
        up = torch.nn.functional.interpolate(m, size=tuple(self.input_size), mode="bilinear", align_corners=False)
        return up[:, 0].numpy().astype(np.float32)
