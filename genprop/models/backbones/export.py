"""Save a (trained) backbone as a folder its adapter loads again: ``config.pretrained = <folder>``.

The layout is the diffusers pipeline's (what ``SVDBackbone.build`` / ``WanBackbone.build`` read from a
pretrained directory), plus what diffusers does not know about:

    unet/ or transformer/                 the denoiser (its own ``save_pretrained``)
    vae/, text_encoder/, tokenizer/, image_encoder/   when the backbone has them
    genprop_backbone_extras.safetensors   learned null embeddings of encoder-less world backbones
    genprop_backbone.json                 {"backbone": kind, "backbone_config": {...}} (``pretrained`` = null)

This is how the ``i2v`` objective exports a backbone trained from scratch (which GenProp then loads as G).
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch.nn as nn

EXTRAS_NAME = "genprop_backbone_extras.safetensors"
CONFIG_NAME = "genprop_backbone.json"
# Parameters of the adapter itself (not of a diffusers/transformers model inside it).
EXTRA_PARAMETERS = ("null_text_embedding", "null_image_embedding")


def save_backbone(backbone: nn.Module, directory: str, weights: dict | None = None) -> None:
    """Write ``backbone`` to ``directory`` so ``build_backbone(replace(config, pretrained=directory))`` rebuilds it.

    Args:
        backbone (SVDBackbone | WanBackbone): the adapter.
        directory (str): a local directory (created).
        weights (dict[str, Tensor] | None): weights to save instead of the live ones (e.g. the EMA), keyed as
            ``backbone.state_dict()``; others keep their live values. The backbone is left unchanged.
    """
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    saved = None
    if weights:
        saved = {k: v.detach().clone() for k, v in backbone.state_dict().items() if k in weights}
        backbone.load_state_dict(weights, strict=False)
    try:
        # 1. the denoiser and any encoders, each with its own library's save_pretrained
        backbone.denoiser.save_pretrained(os.path.join(directory, "unet" if backbone.kind == "svd" else "transformer"),
                                          safe_serialization=True)
        vae = getattr(backbone.latent_map, "vae", None)
        if vae is not None:
            vae.save_pretrained(os.path.join(directory, "vae"), safe_serialization=True)
        for name in ("text_encoder", "image_encoder"):
            module = getattr(backbone, name, None)
            if module is not None:
                module.save_pretrained(os.path.join(directory, name), safe_serialization=True)
        tok = getattr(backbone, "tokenizer", None)
        if tok is not None:
            tok.save_pretrained(os.path.join(directory, "tokenizer"))
        # 2. the adapter's own learned tensors
        extras = {n: getattr(backbone, n).detach().cpu().contiguous() for n in EXTRA_PARAMETERS
                  if isinstance(getattr(backbone, n, None), nn.Parameter)}
        if extras:
            save_file(extras, os.path.join(directory, EXTRAS_NAME), metadata={"backbone": backbone.kind})
    finally:
        if saved is not None:
            backbone.load_state_dict(saved, strict=False)
    config = dataclasses.replace(backbone.config, pretrained=None)
    with open(os.path.join(directory, CONFIG_NAME), "w") as f:
        json.dump({"backbone": backbone.kind, "backbone_config": dataclasses.asdict(config)}, f, indent=2,
                  sort_keys=True)


def load_extras(backbone: nn.Module, directory: str | None) -> None:
    """Load ``genprop_backbone_extras.safetensors`` of a local pretrained folder into ``backbone`` (if present)."""
    if not directory or not os.path.isfile(os.path.join(str(directory), EXTRAS_NAME)):
        return
    from safetensors.torch import load_file

    from genprop.errors import CheckpointError

    tensors = load_file(os.path.join(directory, EXTRAS_NAME))
    for name, value in tensors.items():
        param = getattr(backbone, name, None)
        if not isinstance(param, nn.Parameter) or param.shape != value.shape:
            raise CheckpointError(f"{directory}/{EXTRAS_NAME}: {name} {tuple(value.shape)} does not fit this "
                                  f"{backbone.kind} backbone")
        param.data.copy_(value)


def load_backbone(directory: str) -> nn.Module:
    """Rebuild a backbone written by :func:`save_backbone` (its adapter, ``pretrained = directory``).

    Args:
        directory (str): the folder.
    """
    from genprop.models.backbones import backbone_config_from_dict, build_backbone

    with open(os.path.join(directory, CONFIG_NAME)) as f:
        d = json.load(f)
    config = backbone_config_from_dict(d["backbone"], {**d["backbone_config"], "pretrained": directory})
    return build_backbone(config)
