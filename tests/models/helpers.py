"""Tiny models and batches for the model tests (fixed seeds, CPU)."""

from __future__ import annotations

import torch

from genprop.losses import loss_masks
from genprop.models import GenPropConfig, GenPropModel

# (backbone, tiny() kwargs, frames, pixels)
VARIANTS = {
    "wan": ("wan", {}, 5, 32),
    "svd": ("svd", {}, 5, 32),
    "wan_vae": ("wan", dict(latent_map="vae", encoders=True), 17, 32),
    "svd_vae": ("svd", dict(latent_map="vae", image_encoder=True), 5, 16),
}


def make_model(name: str) -> GenPropModel:
    kind, kwargs, _, _ = VARIANTS[name]
    return GenPropModel(GenPropConfig.tiny(kind, **kwargs))


def make_batch(model: GenPropModel, name: str, seed: int = 0, batch: int = 2, frames: int | None = None) -> dict:
    """A training batch: noised latents, target, condition, SCE latents, task ids and masks."""
    _, _, t, px = VARIANTS[name]
    t = frames or t
    g = torch.Generator().manual_seed(seed)
    bb = model.backbone
    video = torch.rand(batch, t, 3, px, px, generator=g) * 2 - 1
    source = video.clone()
    source[:, :, :, px // 4: px // 2, px // 4: px // 2] = 0.5  # a synthetic edit inside the mask
    mask = torch.zeros(batch, t, px, px)
    mask[:, :, px // 4: px // 2, px // 4: px // 2] = 1
    with torch.no_grad():
        lat = bb.encode_video(video)
        sce_lat = bb.encode_video(source)
        cond = bb.encode_condition(video[:, 0], "a red ball", generator=g, num_frames=t)
    sample = bb.training_sample(lat, g)
    latent_mask, mpd_target = loss_masks(mask, bb.latent_map, lat.shape[1], model.mpd.scale)
    return dict(model_input=sample.model_input, timestep=sample.timestep, target=sample.target, cond=cond,
                sce_latents=sce_lat, task_ids=torch.tensor([1, 3][:batch]), latent_mask=latent_mask,
                mpd_target=mpd_target, num_frames=t, video=video)


def forward(model: GenPropModel, b: dict, delta: float = 1e-2):
    return model(b["model_input"], b["timestep"], b["cond"], b["sce_latents"], b["task_ids"],
                 perturb_mask=b["latent_mask"], perturb_delta=delta, num_frames=b["num_frames"])
