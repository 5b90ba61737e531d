"""The parts of a Wan adapter, loaded from a diffusers folder (``config.pretrained``) or built from config."""

from __future__ import annotations

import os

import torch.nn as nn

from genprop.models.backbones.conditioning import load_processor
from genprop.models.backbones.interface import seeded
from genprop.models.backbones.latent_maps import WanVaeLatents, choose_latent_map
from genprop.models.backbones.pipeline_folder import component_class
from genprop.models.backbones.wan_config import WanBackboneConfig


def build_transformer(config: WanBackboneConfig) -> nn.Module:
    """The transformer from ``config.transformer`` (random init; works on the meta device)."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**config.transformer)


SCHEDULERS = ("auto", "flow_match_euler", "unipc")


def load_wan_parts(config: WanBackboneConfig, dtype=None) -> tuple:
    """(transformer, latent map, text encoder, tokenizer, image encoder, image processor, scheduler config) of
    ``config``: from ``config.pretrained`` (a local directory or hub id, the pipeline's subfolders), else built
    under ``config.seed`` (no image processor: the adapter uses the pipelines' preprocessing at the encoder's size;
    no scheduler config). Pretrained weights load in ``dtype`` (None: as stored).

    Raises:
        ValueError: an unknown ``latent_map``.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    tok = processor = scheduler = None
    with seeded(config.seed):
        if config.pretrained:
            p = config.pretrained
            transformer = WanTransformer3DModel.from_pretrained(p, subfolder="transformer", torch_dtype=dtype)
            vae = (AutoencoderKLWan.from_pretrained(p, subfolder="vae", torch_dtype=dtype)
                   if config.latent_map == "vae" else None)
            text = (UMT5EncoderModel.from_pretrained(p, subfolder="text_encoder", torch_dtype=dtype)
                    if config.text_encoder else None)
            # an exported tiny backbone has no tokenizer files (it uses the byte tokenizer)
            if text is not None and not (os.path.isdir(p) and not os.path.isdir(os.path.join(p, "tokenizer"))):
                from transformers import AutoTokenizer

                tok_cls = component_class(p, "tokenizer") or AutoTokenizer  # the class the pipeline loads
                tok = tok_cls.from_pretrained(p, subfolder="tokenizer")
            image_cls = component_class(p, "image_encoder") or CLIPVisionModel  # hidden states: either class
            image = (image_cls.from_pretrained(p, subfolder="image_encoder", torch_dtype=dtype)
                     if config.image_encoder else None)
            processor = load_processor(p, "image_processor") if image is not None else None
            scheduler = _folder_scheduler_config(p)
        else:
            transformer = build_transformer(config)
            vae = AutoencoderKLWan(**config.vae) if config.latent_map == "vae" else None
            text = UMT5EncoderModel(UMT5Config(**config.text_encoder)) if config.text_encoder else None
            image = CLIPVisionModel(CLIPVisionConfig(**config.image_encoder)) if config.image_encoder else None
    latent_map = choose_latent_map(config.latent_map, lambda: WanVaeLatents(vae, pad=config.pad_frames),
                                   config.unshuffle_factor)
    return transformer, latent_map, text, tok, image, processor, scheduler


def _folder_scheduler_config(path: str) -> dict | None:
    """A pipeline folder's ``scheduler/scheduler_config.json`` (with its ``_class_name``), or None."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    try:
        return dict(FlowMatchEulerDiscreteScheduler.load_config(path, subfolder="scheduler"))
    except (OSError, ValueError):
        return None


def make_wan_scheduler(config: WanBackboneConfig, folder_config: dict | None = None):
    """A fresh scheduler: ``config.scheduler`` "auto" = the folder's own (any diffusers scheduler class its config
    names) when there is one, else flow-match Euler; "flow_match_euler" / "unipc" (flow prediction) with
    ``config.flow_shift``.

    Raises:
        ValueError: an unknown ``config.scheduler``.
    """
    import diffusers

    if config.scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {config.scheduler!r}; expected one of {SCHEDULERS}")
    if config.scheduler == "auto" and folder_config is not None:
        return getattr(diffusers, folder_config["_class_name"]).from_config(folder_config)
    if config.scheduler == "unipc":
        return diffusers.UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                                 use_flow_sigmas=True, flow_shift=config.flow_shift)
    return diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.flow_shift)
