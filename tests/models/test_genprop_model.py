"""GenPropModel on tiny SVD and Wan backbones: identity at init, gradients, frozen backbone, MPD frames."""

from __future__ import annotations

import pytest
import torch

from genprop.losses import RegionLossConfig, region_aware_loss, region_terms
from tests.models.helpers import VARIANTS, forward, make_batch, make_model


@pytest.mark.parametrize("name", list(VARIANTS))
def test_backbone_stages_equal_diffusers_forward(name):
    model = make_model(name)
    bb, b = model.backbone, make_batch(model, name)
    with torch.no_grad():
        ours = bb(b["model_input"], b["timestep"], b["cond"])
        if bb.kind == "wan":
            x = torch.cat([b["model_input"], b["cond"]["condition"]], 2).transpose(1, 2)
            ref = bb.transformer(x, b["timestep"], b["cond"]["prompt_embeds"],
                                 b["cond"].get("image_embeds")).sample.transpose(1, 2)
        else:
            t = b["model_input"].shape[1]
            x = torch.cat([b["model_input"], b["cond"]["image_latents"][:, None].expand(-1, t, -1, -1, -1)], 2)
            ref = bb.unet(x, b["timestep"], b["cond"]["image_embeds"], b["cond"]["added_time_ids"]).sample
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_untrained_genprop_equals_backbone_exactly(name):
    model = make_model(name)
    b = make_batch(model, name)
    with torch.no_grad():
        out = forward(model, b)
        plain = model.backbone(b["model_input"], b["timestep"], b["cond"])
    assert torch.equal(out.prediction, plain)
    assert out.mask.shape[1] == b["num_frames"]


def _grad_norm(module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["wan", "svd"])
def test_gradients_step1_step2_and_frozen_backbone(name):
    torch.manual_seed(0)
    model = make_model(name).train()
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3, weight_decay=0.0)
    b = make_batch(model, name)

    # step 1: the full loss
    out = forward(model, b)
    terms = region_aware_loss(out, b["target"], b["latent_mask"], b["mpd_target"], RegionLossConfig())
    terms["loss"].backward()
    last_layers = [mlp.net[-1] for block in model.sce.injections for mlp in block]
    assert all(_grad_norm(m) > 0 for m in last_layers)
    assert _grad_norm(model.mpd) > 0
    assert _grad_norm(model.task_embedding) > 0
    assert _grad_norm(model.sce.blocks) == 0  # behind the zero-initialised injections
    assert _grad_norm(model.sce.input_layer) == 0
    assert all(p.grad is None for p in model.backbone.parameters())
    opt.step()
    opt.zero_grad()

    # step 2: L_mask + L_non-mask alone reach the SCE once the injections are non-zero
    out = forward(model, b, delta=0.0)
    l_mask, l_non = region_terms(out.prediction, b["target"], b["latent_mask"])
    (l_non + 2.0 * l_mask).backward()
    assert _grad_norm(model.sce.blocks) > 0
    assert _grad_norm(model.sce.input_layer) > 0
    assert _grad_norm(model.sce.fusion) > 0
    opt.step()
    opt.zero_grad()

    # more steps: the backbone never moves
    for seed in (1, 2):
        b = make_batch(model, name, seed=seed)
        out = forward(model, b)
        region_aware_loss(out, b["target"], b["latent_mask"], b["mpd_target"])["loss"].backward()
        opt.step()
        opt.zero_grad()
    after = model.backbone.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    assert not model.backbone.training


def test_mpd_restores_video_frames_with_wan_vae():
    model = make_model("wan_vae")
    b = make_batch(model, "wan_vae", frames=17)
    assert b["model_input"].shape[1] == 5  # 1 + 16 / 4 latent frames
    with torch.no_grad():
        out = forward(model, b)
    assert out.mask.shape == (2, 17, 32, 32)  # every video frame at the video's own resolution
    assert b["mpd_target"].shape == (2, 17, 32, 32)
    # mask_scale 1: the latent grid (4x4 from 32x32 pixels), mask_scale 2 in between
    for scale, side in ((1, 4), (2, 8)):
        import dataclasses

        from genprop.models import GenPropModel

        m = GenPropModel(dataclasses.replace(model.config, mask_scale=scale), backbone=model.backbone)
        with torch.no_grad():
            assert forward(m, b).mask.shape == (2, 17, side, side)
    with pytest.raises(ValueError, match="must divide"):
        GenPropModel(dataclasses.replace(model.config, mask_scale=3), backbone=model.backbone)


def test_wan_refuses_16_frames_with_clear_error():
    model = make_model("wan_vae")
    video = torch.zeros(1, 16, 3, 32, 32)
    with pytest.raises(ValueError, match=r"T = 16.*13 and 17"):
        model.backbone.encode_video(video)
    with pytest.raises(ValueError, match="T = 16"):
        model.backbone.encode_condition(video[:, 0], "x", num_frames=16)


def test_wan_pads_16_frames_and_crops_back():
    from dataclasses import replace

    from genprop.models import GenPropConfig, GenPropModel

    cfg = GenPropConfig.tiny("wan", latent_map="vae", encoders=True, pad_frames=True)
    model = GenPropModel(cfg)
    b = make_batch(model, "wan_vae", frames=16)
    assert b["model_input"].shape[1] == 5  # padded to 17 frames
    with torch.no_grad():
        out = forward(model, b)
        video = model.backbone.decode_latents(b["sce_latents"], num_frames=16)
    assert out.mask.shape == (2, 16, 32, 32)  # cropped back to 16 frames, at the video's resolution
    assert video.shape == (2, 16, 3, 32, 32)
    assert replace(cfg).backbone.pad_frames


def test_sce_block_count_is_checked():
    from genprop.models import SelectiveContentEncoder

    model = make_model("wan")
    with pytest.raises(ValueError, match="num_blocks"):
        SelectiveContentEncoder.from_backbone(model.backbone, 99, 8)


def test_batched_l_grad_passes_equal_two_separate_sce_passes():
    # forward runs the clean and the perturbed SCE pass as one batch of 2B; it must equal two plain passes.
    from tests.models.helpers import forward, make_batch, make_model

    for name in ("wan", "svd"):
        torch.manual_seed(0)
        m = make_model(name)
        with torch.no_grad():
            for p in m.sce.parameters():
                p.add_(0.01 * torch.randn_like(p))  # non-zero injections, so the features carry information
        b = make_batch(m, name)
        out = forward(m, b)
        bb = m.backbone
        ctx = bb.prepare(b["model_input"], b["timestep"], b["cond"])
        g_hidden, task = bb.embed(ctx.x_in, ctx), m.task_embedding(b["task_ids"])
        for latents, got in ((b["sce_latents"], out.sce_features),
                             (b["sce_latents"] + 1e-2 * b["latent_mask"], out.sce_features_perturbed)):
            ref = m.sce(bb, bb.sce_input(b["model_input"], latents, b["cond"]), ctx, g_hidden, task)
            for r, g in zip([bb.feature_grid(t, ctx) for blk in ref for t in blk], got):
                torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
