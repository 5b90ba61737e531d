"""A diffusers pipeline folder as its authors ship it (``model_index.json`` + one subfolder per component): which
pipeline it is, the class each component was saved as, and the backbone config that loads it."""

from __future__ import annotations

import inspect
import json
import os

MODEL_INDEX = "model_index.json"
PIPELINES = {"WanImageToVideoPipeline": "wan", "StableVideoDiffusionPipeline": "svd"}


def is_pipeline_folder(path: str | None) -> bool:
    """Whether ``path`` is a local diffusers pipeline folder (it has ``model_index.json``)."""
    return bool(path) and os.path.isfile(os.path.join(path, MODEL_INDEX))


def model_index(path: str) -> dict:
    """The folder's ``model_index.json``."""
    with open(os.path.join(path, MODEL_INDEX)) as f:
        return json.load(f)


def component_class(path: str | None, name: str):
    """The class a local pipeline folder saved component ``name`` as (what the pipeline's ``from_pretrained``
    instantiates), or None when ``path`` is not a local folder or has no such component."""
    if not is_pipeline_folder(path):
        return None
    entry = model_index(path).get(name)
    if not entry or entry[0] is None or not os.path.isdir(os.path.join(path, name)):
        return None
    import importlib

    return getattr(importlib.import_module(entry[0]), entry[1])


def _config(path: str, subfolder: str, cls=None) -> dict | None:
    f = os.path.join(path, subfolder, "config.json")
    if not os.path.isfile(f):
        return None
    with open(f) as fh:
        d = {k: v for k, v in json.load(fh).items() if not k.startswith("_")}
    if cls is not None:  # only what the class's constructor takes (diffusers writes a few derived fields)
        params = inspect.signature(cls.__init__).parameters
        d = {k: v for k, v in d.items() if k in params}
    return d


def backbone_config_from_pipeline(path: str):
    """The backbone config that loads the pipeline folder at ``path`` as it is: its component configs, the
    pipeline's defaults (Wan: 512 text tokens, guidance 5, 50 steps, the folder's scheduler; SVD: 25 steps,
    guidance 1 -> 3, fps 7, motion bucket 127, noise augmentation 0.02).

    Raises:
        ValueError: not a Wan image-to-video or SVD pipeline folder (names what it is).
    """
    from genprop.models.backbones.svd_config import SVDBackboneConfig
    from genprop.models.backbones.wan_config import WanBackboneConfig

    name = model_index(path).get("_class_name")
    kind = PIPELINES.get(name)
    if kind is None:
        raise ValueError(f"{path}: a {name} folder; genprop loads {sorted(PIPELINES)}")
    if kind == "wan":
        from diffusers import WanTransformer3DModel

        text = _config(path, "text_encoder")
        image = _config(path, "image_encoder")
        return WanBackboneConfig(pretrained=path, latent_map="vae", transformer=_config(path, "transformer",
                                 WanTransformer3DModel), vae=_config(path, "vae") or {},
                                 text_encoder=text, image_encoder=image, scheduler="auto")
    from diffusers import UNetSpatioTemporalConditionModel

    return SVDBackboneConfig(pretrained=path, latent_map="vae",
                             unet=_config(path, "unet", UNetSpatioTemporalConditionModel) or {},
                             vae=_config(path, "vae") or {}, image_encoder=_config(path, "image_encoder"))
