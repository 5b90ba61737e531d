"""Parameter counts of GenProp on the real backbone configurations, computed on the meta device (no weights)."""

from __future__ import annotations

import torch

from genprop.models.backbones import SVDBackbone, SVDBackboneConfig, WanBackbone, WanBackboneConfig
from genprop.models.backbones.latent_maps import SVDVaeLatents, WanVaeLatents
from genprop.models.genprop_model import GenPropConfig, GenPropModel


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_info(backbone: str, sce_blocks: int | None = None) -> dict:
    """Parameter counts for SVD-XT or Wan2.1 I2V 14B-480P with GenProp's SCE and MPD, on the meta device.

    Args:
        backbone (str): "svd" or "wan".
        sce_blocks (int | None, default None): SCE blocks; None = the default (a quarter of the blocks).

    Returns:
        {"backbone": denoiser parameters, "sce": SCE incl. fusion, injections and task projection,
         "mpd": MPD, "trainable": SCE + MPD + task embeddings, "total": backbone + trainable}.
    """
    with torch.device("meta"):
        if backbone == "svd":
            from diffusers import AutoencoderKLTemporalDecoder

            cfg = SVDBackboneConfig()
            bb = SVDBackbone(cfg, SVDBackbone.build_unet(cfg), SVDVaeLatents(AutoencoderKLTemporalDecoder()))
        elif backbone == "wan":
            from diffusers import AutoencoderKLWan

            cfg = WanBackboneConfig()
            bb = WanBackbone(cfg, WanBackbone.build_transformer(cfg), WanVaeLatents(AutoencoderKLWan()))
        else:
            raise ValueError(f"unknown backbone {backbone!r}; expected 'svd' or 'wan'")
        model = GenPropModel(GenPropConfig(backbone=cfg, sce_blocks=sce_blocks), backbone=bb)
    trainable = sum(p.numel() for p in model.trainable_parameters())
    n_backbone = _count(bb.denoiser)
    return {"backbone": n_backbone, "sce": _count(model.sce), "mpd": _count(model.mpd), "trainable": trainable,
            "total": n_backbone + trainable}
