"""The parts of a Wan adapter, loaded from a diffusers folder (``config.pretrained``) or built from config."""

from __future__ import annotations

import os

import torch.nn as nn

from genprop.models.backbones.interface import seeded
from genprop.models.backbones.latent_maps import PixelUnshuffleLatents, WanVaeLatents
from genprop.models.backbones.wan_config import WanBackboneConfig


def build_transformer(config: WanBackboneConfig) -> nn.Module:
    """The transformer from ``config.transformer`` (random init; works on the meta device)."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**config.transformer)


def load_wan_parts(config: WanBackboneConfig) -> tuple:
    """(transformer, latent map, text encoder, tokenizer, image encoder) of ``config``: from ``config.pretrained``
    (a local directory or hub id, the pipeline's subfolders), else built under ``config.seed``.

    Raises:
        ValueError: an unknown ``latent_map``.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    tok = None
    with seeded(config.seed):
        if config.pretrained:
            p = config.pretrained
            transformer = WanTransformer3DModel.from_pretrained(p, subfolder="transformer")
            vae = AutoencoderKLWan.from_pretrained(p, subfolder="vae") if config.latent_map == "vae" else None
            text = UMT5EncoderModel.from_pretrained(p, subfolder="text_encoder") if config.text_encoder else None
            # an exported tiny backbone has no tokenizer files (it uses the byte tokenizer)
            if text is not None and not (os.path.isdir(p) and not os.path.isdir(os.path.join(p, "tokenizer"))):
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(p, subfolder="tokenizer")
            image = CLIPVisionModel.from_pretrained(p, subfolder="image_encoder") if config.image_encoder else None
        else:
            transformer = build_transformer(config)
            vae = AutoencoderKLWan(**config.vae) if config.latent_map == "vae" else None
            text = UMT5EncoderModel(UMT5Config(**config.text_encoder)) if config.text_encoder else None
            image = CLIPVisionModel(CLIPVisionConfig(**config.image_encoder)) if config.image_encoder else None
    if config.latent_map == "vae":
        latent_map = WanVaeLatents(vae, pad=config.pad_frames)
    elif config.latent_map == "pixel_unshuffle":
        latent_map = PixelUnshuffleLatents(config.unshuffle_factor)
    else:
        raise ValueError(f"unknown latent_map {config.latent_map!r}; expected 'vae' or 'pixel_unshuffle'")
    return transformer, latent_map, text, tok, image
