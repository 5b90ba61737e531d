"""The samplers: deterministic per seed, CFG batched, GenProp at init equals the plain backbone."""

from __future__ import annotations

import pytest
import torch

from genprop.sampling import generate, propagate, sample_latents
from tests.models.helpers import make_model


@pytest.mark.parametrize("name", ["wan", "svd"])
def test_sampler_deterministic_cfg_and_genprop_equals_backbone(name):
    model = make_model(name).eval()
    bb = model.backbone
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 5, 3, 32, 32, generator=g) * 2 - 1

    batches = []
    orig = bb.prepare

    def spy(x, t, cond):
        batches.append(x.shape[0])
        return orig(x, t, cond)

    bb.prepare = spy
    a = propagate(model, video, video[:, 0], "a cat", task_id=1, seed=7)
    assert batches and set(batches) == {2}  # unconditional + conditional in one batch
    b = propagate(model, video, video[:, 0], "a cat", task_id=1, seed=7)
    c = propagate(model, video, video[:, 0], "a cat", task_id=1, seed=8)
    plain = generate(bb, video[:, 0], 5, "a cat", seed=7)
    assert a.shape == video.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, plain)
    batches.clear()
    generate(bb, video[:, 0], 5, "a cat", seed=7, guidance_scale=1.0)
    assert set(batches) == {1}  # guidance <= 1: no unconditional pass


def test_guidance_defaults():
    wan, svd = make_model("wan").backbone, make_model("svd").backbone
    assert float(wan.guidance_scale(5)) == 5.0 and float(wan.guidance_scale(5, 20.0)) == 20.0
    ramp = svd.guidance_scale(5).flatten()
    assert ramp[0] == 1.0 and ramp[-1] == 3.0 and ramp.shape == (5,)


def test_wan_vae_sampling_keeps_frame_count():
    model = make_model("wan_vae").eval()
    video = torch.rand(1, 17, 3, 32, 32) * 2 - 1
    out = propagate(model, video, video[:, 0], "x", seed=0, num_steps=2)
    assert out.shape == video.shape
    lat = sample_latents(model.backbone, model.backbone.encode_condition(video[:, 0], "x", num_frames=17),
                         (1, 5, 16, 4, 4), generator=torch.Generator().manual_seed(0), num_steps=1)
    assert lat.shape == (1, 5, 16, 4, 4)


def test_sampler_runs_the_mask_decoder_on_the_last_step_only():
    model = make_model("wan").eval()
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 5, 3, 32, 32, generator=g) * 2 - 1
    asked = []
    orig = model.mpd.forward

    def spy(*args, **kwargs):
        asked.append(True)
        return orig(*args, **kwargs)

    model.mpd.forward = spy
    steps = model.backbone.config.num_steps
    propagate(model, video, video[:, 0], "a cat", seed=0, num_steps=steps)
    assert len(asked) == 1  # one MPD call in `steps` denoiser calls
    # skipping the MPD leaves the prediction unchanged
    lat = model.backbone.encode_video(video)
    cond = model.backbone.encode_condition(video[:, 0], "a cat", num_frames=5)
    t = torch.full((1,), 500.0)
    with torch.no_grad():
        full = model(lat, t, cond, lat, torch.zeros(1, dtype=torch.long), num_frames=5)
        lean = model(lat, t, cond, lat, torch.zeros(1, dtype=torch.long), num_frames=5, predict_mask=False)
    assert lean.mask is None and full.mask is not None
    assert torch.equal(full.prediction, lean.prediction)
