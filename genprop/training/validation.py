"""Validation during training: a few held-out samples propagated with few steps, PSNR against the target, a strip.

What a user looks at to see whether a run is learning: the PSNR of the sampled video against the target
video (both decoded by the backbone's latent map) and a PNG with, per sample, frames of the SCE input,
the output and the target side by side.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from genprop.sampling import sample_latents


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1, 1] (peak 1 after mapping to [0, 1])."""
    mse = (((a.float() - b.float()) / 2) ** 2).mean().clamp_min(1e-10)
    return float(-10 * torch.log10(mse))


def _frames_row(video: torch.Tensor, picks: list[int]) -> np.ndarray:
    """(T, 3, H, W) in [-1, 1] -> (H, len(picks) * W, 3) uint8."""
    frames = [((video[i].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy() for i in picks]
    return np.concatenate(frames, axis=1)


@torch.no_grad()
def validate(model, batch: dict, objective: str, num_steps: int = 3, seed: int = 0) -> dict:
    """Sample the validation batch and score it.

    Args:
        model: a ``GenPropModel`` (``genprop``) or a backbone adapter (``i2v``), unwrapped.
        batch (dict): a collated batch (``genprop.training.data.collate``).
        objective (str): "genprop" or "i2v".
        num_steps (int, default 3): denoising steps.
        seed (int, default 0): seeds the initial noise (the same every validation, so runs compare).

    Returns:
        dict: ``psnr`` (mean dB), ``psnr_per_sample`` (list), ``strip`` (PNG bytes: rows = samples;
        columns = first/middle/last frame of SCE input | output | target).
    """
    backbone = model.backbone if objective == "genprop" else model
    was_training = model.training
    model.eval()
    try:
        target = batch["target_latents"]
        num_frames = batch["mask"].shape[1]
        g = torch.Generator(device=target.device).manual_seed(seed)
        kwargs, cond = {}, batch["cond"]
        if objective == "genprop":
            cond = model.source_condition_from_latents(cond, batch["sce_latents"])
            kwargs = dict(model=model, sce_latents=batch["sce_latents"], task_ids=batch["task_id"],
                          num_frames=num_frames)
        latents = sample_latents(backbone, cond, tuple(target.shape), generator=g, num_steps=num_steps,
                                 **kwargs)
        out = backbone.decode_latents(latents, num_frames)
        tgt = backbone.decode_latents(target, num_frames)
        src = backbone.decode_latents(batch["sce_latents"], num_frames)
    finally:
        model.train(was_training)
    scores = [psnr(o, t) for o, t in zip(out, tgt)]
    t = out.shape[1]
    picks = sorted({0, t // 2, t - 1})
    rows = [np.concatenate([_frames_row(v[i], picks) for v in (src, out, tgt)], axis=1) for i in range(out.shape[0])]
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buf, format="PNG")
    return {"psnr": float(np.mean(scores)), "psnr_per_sample": scores, "strip": buf.getvalue()}
