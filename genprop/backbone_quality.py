"""How well an image-to-video backbone predicts the procedural world: PSNR of frames 2..T against the real
continuation, beside two trivial references that need no model.

- ``model``: the backbone's clip generated from the real first frame (few sampling steps);
- ``repeat_first``: the first frame repeated — the score a backbone that learned nothing about motion gets;
- ``mean_frame``: the clip's own temporal mean repeated — a static oracle (it peeks at the future frames),
  the best any motionless prediction can do.

A backbone has learned the world's dynamics once ``model`` beats ``repeat_first`` on held-out seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genprop.datasets.procedural import WorldConfig, make_scene, render


@dataclass(frozen=True)
class ClipSpec:
    """Which procedural clips to score.

    Args:
        seeds (tuple[int, ...]): scene seeds (held out: never used for training).
        frames (int): T.
        height, width (int): clip size in pixels.
        fps (str): frame rate of the world.
    """

    seeds: tuple[int, ...]
    frames: int = 9
    height: int = 32
    width: int = 32
    fps: str = "12"

    def world(self) -> WorldConfig:
        return WorldConfig(videos=0, frames=self.frames, height=self.height, width=self.width, fps=self.fps)


def procedural_clips(spec: ClipSpec) -> np.ndarray:
    """(N, T, H, W, 3) uint8 clips of the scenes of ``spec.seeds``."""
    world = spec.world()
    return np.stack([render(make_scene(int(s), world)).frames for s in spec.seeds])


def psnr_after_first(pred: np.ndarray, real: np.ndarray, cap: float = 100.0) -> np.ndarray:
    """Per-clip PSNR (dB) over frames 2..T of uint8 clips (N, T, H, W, 3); identical clips give ``cap``."""
    diff = pred[:, 1:].astype(np.float64) - real[:, 1:].astype(np.float64)
    mse = (diff ** 2).reshape(len(real), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        psnr = 10 * np.log10(255.0 ** 2 / mse)
    return np.minimum(psnr, cap)


def reference_scores(real: np.ndarray) -> dict[str, float]:
    """Mean PSNR of the two model-free references on clips (N, T, H, W, 3)."""
    repeat = np.repeat(real[:, :1], real.shape[1], axis=1)
    mean = np.repeat(real.astype(np.float64).mean(axis=1, keepdims=True), real.shape[1], axis=1)
    return {"repeat_first": float(psnr_after_first(repeat, real).mean()),
            "mean_frame": float(psnr_after_first(np.round(mean).astype(np.uint8), real).mean())}


def to_model(clips: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, T, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(clips).to(device).permute(0, 1, 4, 2, 3).float() / 127.5 - 1


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float (N, T, 3, H, W) in [-1, 1] -> uint8 (N, T, H, W, 3)."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()


@torch.no_grad()
def generated_clips(backbone, real: np.ndarray, *, num_steps: int = 4, guidance_scale: float | None = 1.0,
                    seed: int = 0, batch: int = 8) -> np.ndarray:
    """The backbone's clips from the real first frames: (N, T, H, W, 3) uint8.

    Args:
        backbone: the adapter (``generate`` via ``genprop.sampling``).
        real (np.ndarray): the real clips; only their first frames are used.
        num_steps (int, default 4): sampling steps (few steps give the conditional mean's blur, which is
            what a PSNR against one real continuation rewards).
        guidance_scale (float | None, default 1.0): CFG scale; 1.0 disables guidance.
        seed (int, default 0): sampling seed.
        batch (int, default 8): clips per sampler call.
    """
    from genprop.sampling import generate

    device = next(backbone.parameters()).device
    out = []
    for i in range(0, len(real), batch):
        chunk = to_model(real[i:i + batch], device)
        video = generate(backbone, chunk[:, 0], chunk.shape[1], seed=seed + i, num_steps=num_steps,
                         guidance_scale=guidance_scale)
        out.append(to_uint8(video))
    return np.concatenate(out)


def score_backbone(backbone, spec: ClipSpec, **sampling) -> dict[str, float]:
    """``{"model", "repeat_first", "mean_frame"}``: mean PSNR (dB) of frames 2..T on ``spec``'s clips.

    Args:
        backbone: the adapter to score.
        spec (ClipSpec): the held-out clips.
        **sampling: passed to :func:`generated_clips` (``num_steps``, ``guidance_scale``, ``seed``).
    """
    real = procedural_clips(spec)
    scores = reference_scores(real)
    scores["model"] = float(psnr_after_first(generated_clips(backbone, real, **sampling), real).mean())
    return scores
