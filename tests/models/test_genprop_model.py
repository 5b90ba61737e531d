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
    assert out.mask.shape == (2, 17, 4, 4)
    assert b["mpd_target"].shape == (2, 17, 4, 4)


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
    assert out.mask.shape == (2, 16, 4, 4)
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


def test_first_frame_anchor_is_flow_matching_on_the_difference_from_the_first_frame():
    import dataclasses

    from genprop.models import GenPropModel

    base = make_model("wan")
    bb_cfg = dataclasses.replace(base.config.backbone, first_frame_anchor=True)
    model = GenPropModel(dataclasses.replace(base.config, backbone=bb_cfg))
    bb, b = model.backbone, make_batch(model, "wan")
    x_t, t, cond = b["model_input"], b["timestep"], b["cond"]
    # the anchor is the first frame's latents repeated over time
    first = bb.latent_map.encode(b["video"][:, :1].expand(-1, b["video"].shape[1], -1, -1, -1))
    sigma = (t / 1000).view(-1, 1, 1, 1, 1)
    with torch.no_grad():
        ours = bb(x_t, t, cond)
        x = torch.cat([x_t - (1 - sigma) * first, cond["condition"]], 2).transpose(1, 2)
        v_r = bb.transformer(x, t, cond["prompt_embeds"]).sample.transpose(1, 2)
        out = model(x_t, t, cond, b["sce_latents"], b["task_ids"], num_frames=b["num_frames"])
    torch.testing.assert_close(ours, v_r - first, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.prediction, ours)  # untrained GenProp is still exactly its backbone
    with pytest.raises(ValueError, match="needs the timestep"):
        bb.sce_input(x_t, b["sce_latents"], cond)


def test_preconditioned_anchor_starts_from_repeat_the_first_frame():
    """sigma_data: v = c_skip r_t - a + c_out N. With N = 0 a one-step sample is exactly the first frame repeated,
    and the network's input is r_t scaled to unit variance."""
    import dataclasses

    from genprop.models.backbones import build_backbone
    from genprop.sampling import generate

    base = make_model("wan").config.backbone
    bb = build_backbone(dataclasses.replace(base, first_frame_anchor=True, sigma_data=0.5))
    with torch.no_grad():
        bb.transformer.proj_out.weight.zero_()
        bb.transformer.proj_out.bias.zero_()
    first = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    video = generate(bb, first, 5, num_steps=1, guidance_scale=1.0)
    torch.testing.assert_close(video, first[:, None].expand(-1, 5, -1, -1, -1), rtol=0, atol=1e-5)
    # the formula, by hand, at sigma = 0.3
    cond = bb.encode_condition(first, None, num_frames=5)
    a = bb.latent_map.encode(first[:, None].expand(-1, 5, -1, -1, -1))
    x_t = torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    sigma, s = 0.3, 0.5
    r_t = x_t - (1 - sigma) * a
    var = (1 - sigma) ** 2 * s ** 2 + sigma ** 2
    ctx = bb.prepare(x_t, torch.full((2,), sigma * 1000), cond)
    torch.testing.assert_close(ctx.x_in[:, :a.shape[2]].transpose(1, 2), r_t / var ** 0.5, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ctx.skip, (sigma - (1 - sigma) * s ** 2) / var * r_t - a, rtol=1e-5, atol=1e-5)


def test_source_anchor_starts_as_the_backbone_and_an_open_gate_anchors_on_the_source():
    """source_anchor: the zero-initialised gate leaves GenProp equal to its backbone; with the gate at 1 G is the
    backbone anchored on the source video (all-zero network: a one-step sample is the source itself); the
    gate trains; SVD refuses it."""
    import dataclasses

    from genprop.models import GenPropModel

    base = make_model("wan")
    bb_cfg = dataclasses.replace(base.config.backbone, first_frame_anchor=True, sigma_data=0.5)
    model = GenPropModel(dataclasses.replace(base.config, backbone=bb_cfg, source_anchor=True))
    bb, b = model.backbone, make_batch(model, "wan")
    x_t, t, cond, s = b["model_input"], b["timestep"], b["cond"], b["sce_latents"]
    with torch.no_grad():
        out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
        assert torch.equal(out.prediction, bb(x_t, t, cond)) and torch.equal(out.source_gate, torch.zeros_like(
            out.source_gate))
        # 1. gate open everywhere: exactly the backbone re-anchored on the source
        model.source_gate.head.bias.fill_(1.0)
        out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
        ctx = bb.reanchor(bb.prepare(x_t, t, cond), x_t, t, cond, s)
        want, _ = bb.trunk(ctx, bb.embed(ctx.x_in, ctx))
        torch.testing.assert_close(out.prediction, want, rtol=1e-5, atol=1e-5)
        # 2. with an all-zero network and sigma = 1, x0 = x_t - v is the source
        bb.transformer.proj_out.weight.zero_()
        bb.transformer.proj_out.bias.zero_()
        ones = torch.full_like(t, 1000.0)
        v = model(x_t, ones, cond, s, b["task_ids"], num_frames=b["num_frames"]).prediction
        torch.testing.assert_close(x_t - v, s, rtol=1e-5, atol=1e-5)
    # 3. the footprint head reads |edited first frame - source first frame| per token; patchify inverts unpatchify
    ctx = bb.prepare(x_t, t, cond)
    grid = torch.randn(x_t.shape)
    assert torch.equal(bb.tokens_to_grid(bb.grid_to_tokens(grid, ctx), ctx), grid)
    # 4. both heads get a gradient at initialisation (zero heads, non-zero inputs)
    model = GenPropModel(dataclasses.replace(base.config, backbone=bb_cfg, source_anchor=True))
    out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
    out.prediction.square().mean().backward()
    assert model.source_gate.head.weight.grad.abs().sum() > 0
    assert model.source_gate.footprint.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="source_anchor needs a Wan backbone"):
        GenPropModel(dataclasses.replace(make_model("svd").config, source_anchor=True))
