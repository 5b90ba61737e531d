"""What both adapters' conditioning shares with the diffusers pipelines it must reproduce: the prompt cleaning,
CLIP image preprocessing from the folder's image processor, first frames as the PIL images the pipelines see.

Where a pipeline's own helper is the reference (``prompt_clean``, SVD's ``_resize_with_antialiasing``) it is
imported from the pinned diffusers rather than re-implemented (docs/design-decisions.md, "Reference parity").
"""

from __future__ import annotations

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clean_prompt(text: str) -> str:
    """``WanImageToVideoPipeline``'s prompt cleaning: ftfy, HTML unescaping, whitespace collapsed."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import prompt_clean

    return prompt_clean(text)


def to_pil(first_frame: torch.Tensor) -> list:
    """(B, 3, H, W) in [-1, 1] -> B PIL images (uint8, as a user's image reaches the pipeline)."""
    from PIL import Image

    x = ((first_frame.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(np.ascontiguousarray(a)) for a in x.permute(0, 2, 3, 1).cpu().numpy()]


def default_clip_processor(image_size: int):
    """A ``CLIPImageProcessor`` for an encoder of ``image_size`` without a processor of its own (tiny configs):
    the pipelines' preprocessing (shortest edge resized, centre crop, CLIP's mean and std) at that size."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                              image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))


def load_processor(path: str | None, subfolder: str):
    """The folder's image processor (``image_processor/`` for Wan, ``feature_extractor/`` for SVD) as the class its
    ``model_index.json`` names (what the pipeline loads), or None when the folder has none."""
    from genprop.models.backbones.pipeline_folder import component_class

    cls = component_class(path, subfolder)
    return cls.from_pretrained(path, subfolder=subfolder) if cls is not None else None


def svd_clip_pixels(first_frame: torch.Tensor, processor, size: int = 224) -> torch.Tensor:
    """``StableVideoDiffusionPipeline._encode_image`` on a user's image: [-1, 1] -> antialiased resize to
    ``size`` x ``size`` (the pipeline's 224; an encoder of another size gets its own) -> [0, 1] -> the feature
    extractor's normalisation only. (B, 3, size, size)."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    img = ((first_frame.float().clamp(-1, 1) + 1) * 127.5).round() / 255.0  # the uint8 image the pipeline reads
    img = (_resize_with_antialiasing(img * 2.0 - 1.0, (size, size)) + 1.0) / 2.0
    return processor(images=img, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
                     return_tensors="pt").pixel_values.to(first_frame.device)
