"""An untrained GenProp over a Wan2.1-I2V or SVD folder as its authors ship it is that folder's pipeline.

Tiny random ``WanImageToVideoPipeline`` (UniPC and flow-match Euler) and ``StableVideoDiffusionPipeline`` folders
(``tests/reference_pipelines.py``, written with ``save_pretrained``) are loaded through genprop's user path and
sampled with GenProp's own sampler; the pipeline's ``__call__`` with the same seed, steps, guidance, frames and
size is the reference. Every SCE injection starts at zero, so the videos must agree to float noise.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genprop.models import GenPropConfig, build_genprop
from genprop.models.backbones.pipeline_folder import backbone_config_from_pipeline
from genprop.sampling import propagate
from tests import reference_pipelines as rp

SIZES = [(32, 32), (32, 48)]  # square and not


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    out = {f"wan-{s}": rp.save_wan_pipeline(str(root / f"wan-{s}"), s) for s in rp.WAN_SCHEDULERS}
    out["svd"] = rp.save_svd_pipeline(str(root / "svd"))
    return out


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1


def _wan_reference(folder: str, img: np.ndarray, frames: int = 9) -> torch.Tensor:
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    h, w = img.shape[:2]
    return pipe(image=Image.fromarray(img), prompt=rp.PROMPT, height=h, width=w, num_frames=frames,
                num_inference_steps=3, guidance_scale=5.0, generator=torch.Generator().manual_seed(0),
                output_type="pt").frames.clamp(0, 1)  # (1, T, 3, H, W) in [0, 1]


def _svd_reference(folder: str, img: np.ndarray, frames: int = 16, **kw) -> torch.Tensor:
    from diffusers import StableVideoDiffusionPipeline

    pipe = StableVideoDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    h, w = img.shape[:2]
    return pipe(image=Image.fromarray(img), height=h, width=w, num_frames=frames, num_inference_steps=3,
                generator=torch.Generator().manual_seed(0), output_type="pt", **kw).frames.clamp(0, 1)


def _ours(backbone_config, img: np.ndarray, frames: int, **kw) -> torch.Tensor:
    model = build_genprop(GenPropConfig(backbone=backbone_config)).eval()
    first = _tensor(img)
    with torch.no_grad():
        out = propagate(model, first[:, None].expand(-1, frames, -1, -1, -1), first, seed=0, num_steps=3, **kw)
    return ((out + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("scheduler", rp.WAN_SCHEDULERS)
@pytest.mark.parametrize("size", SIZES)
def test_untrained_genprop_over_a_wan_folder_is_its_pipeline(folders, scheduler, size):
    """Its scheduler (UniPC as the real 480P folder, or Euler), CLIP image processor, noise layout and prompt
    cleaning: the pipeline's."""
    folder = folders[f"wan-{scheduler}"]
    img = rp.first_frame(*size)
    ours = _ours(backbone_config_from_pipeline(folder), img, 9, prompt=rp.PROMPT, guidance_scale=5.0)
    assert rp.psnr(ours, _wan_reference(folder, img)) >= 60


@pytest.mark.parametrize("size", SIZES)
def test_untrained_genprop_over_an_svd_folder_is_its_pipeline(folders, size):
    """The pipeline's antialiased CLIP resize and feature extractor, noise augmentation, time ids and decode chunks;
    fps, motion bucket and noise augmentation other than the defaults."""
    img = rp.first_frame(*size, seed=1)
    settings = dict(fps=10, motion_bucket_id=90, noise_aug_strength=0.05)
    config = dataclasses.replace(backbone_config_from_pipeline(folders["svd"]), decode_chunk_size=8, **settings)
    ref = _svd_reference(folders["svd"], img, decode_chunk_size=8, **settings)
    assert rp.psnr(_ours(config, img, 16), ref) >= 60
    # the decode chunk is the pipeline's decode_chunk_size: another one gives other frames (the test can fail)
    other = _svd_reference(folders["svd"], img, decode_chunk_size=4, **settings)
    assert rp.psnr(other, ref) < 60


def _cli(folder: str, img: np.ndarray, frames: int, tmp_path, *extra) -> np.ndarray:
    from genprop import masks, video
    from genprop.video_decode import decode
    from jobs.cli import main

    masks.write_image(str(tmp_path / "edit.png"), img)
    video.encode(np.stack([img] * frames), str(tmp_path / "in.mp4"), 12)
    h, w = img.shape[:2]
    args = ["propagate", "--model", folder, "--video", str(tmp_path / "in.mp4"), "--edited-first-frame",
            str(tmp_path / "edit.png"), "--out", str(tmp_path / "out.mkv"), "--composite", "none", "--output-mode",
            "rgb-lossless", "--working-area", str(h * w), "--steps", "3", "--seed", "0", "--quiet", *extra]
    assert main(args) == 0
    return decode(str(tmp_path / "out.mkv"))


def _uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.int16)


def test_the_cli_on_a_wan_folder_writes_the_pipelines_frames(folders, tmp_path, capsys):
    """``genprop propagate --model <pipeline folder>`` without a checkpoint: the pipeline's window (81 frames, so a
    9-frame clip is one window) and its uint8 frames within one level."""
    img = rp.first_frame(32, 48, seed=2)
    out = _cli(folders["wan-unipc"], img, 9, tmp_path, "--prompt", rp.PROMPT)
    ref = _uint8(_wan_reference(folders["wan-unipc"], img))
    assert out.shape == ref.shape and np.abs(out.astype(np.int16) - ref).max() <= 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["windows"] == 1


def test_the_cli_on_an_svd_folder_writes_the_pipelines_frames(folders, tmp_path):
    img = rp.first_frame(32, 32, seed=3)
    out = _cli(folders["svd"], img, 16, tmp_path)  # the pipeline folder's U-Net window: 16 frames
    ref = _uint8(_svd_reference(folders["svd"], img, decode_chunk_size=14))  # the backbone's default chunk
    assert out.shape == ref.shape and np.abs(out.astype(np.int16) - ref).max() <= 1


def test_the_sce_size_comes_from_the_loaded_model(folders):
    """A folder with fewer blocks than the built-in 14B config: the default SCE is a quarter of its own blocks."""
    config = dataclasses.replace(backbone_config_from_pipeline(folders["wan-euler"]), transformer={})
    model = build_genprop(GenPropConfig(backbone=config))
    assert len(model.backbone.encoder_blocks()) == 3 and len(model.sce.blocks) == 1


def test_a_folder_of_another_pipeline_is_refused_naming_it(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ValueError, match="a StableDiffusionPipeline folder"):
        backbone_config_from_pipeline(str(tmp_path))
