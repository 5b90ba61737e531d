"""The procedural extensions: the preconditioned Wan backbone, the source-anchor gate, the flow anchor, L_gate and
the gate's learning-rate group."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genprop.baselines import propagate_flow_warp
from genprop.losses import RegionLossConfig
from genprop.models import GenPropConfig, GenPropModel, build_genprop
from genprop.models.anchoring.config import AnchoringConfig
from genprop.models.anchoring.flow import (FLOW_ANCHOR_KEY, flow_warped_edit, with_flow_anchor,
                                          with_flow_anchor_from_latents)
from genprop.models.anchoring.loss import flow_gate_target, gate_term
from genprop.propagation import PropagationConfig, Propagator
from genprop.training import Trainer
from genprop.training.anchored_objective import AnchoredObjective
from genprop.training.config import TrainConfig
from genprop.training.objectives import GenPropObjective
from tests.models.helpers import make_batch, make_model


def _flow_model() -> GenPropModel:
    base = make_model("wan")
    bb_cfg = dataclasses.replace(base.config.backbone, first_frame_anchor=True, sigma_data=0.5)
    return build_genprop(dataclasses.replace(base.config, backbone=bb_cfg, anchoring=AnchoringConfig(flow=True)))


def _moving_square(t: int = 9, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A textured background with a square moving right by 1 px a frame, and its first frame painted red."""
    rng = np.random.default_rng(0)
    bg = (rng.integers(40, 200, (size, size, 1)) + np.zeros((1, 1, 3))).astype(np.uint8)
    video = np.stack([bg.copy() for _ in range(t)])
    for k in range(t):
        video[k, 10:18, 4 + k:12 + k] = (30, 200, 60)
    edited = video[0].copy()
    edited[10:18, 4:12] = (230, 20, 20)
    return video, edited


def _to_model(video: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(video).movedim(-1, -3).float() / 127.5 - 1


def test_flow_warped_edit_is_the_flow_warp_baseline():
    video, edited = _moving_square()
    warped = flow_warped_edit(_to_model(video)[None], _to_model(edited)[None])  # (1, T, 3, H, W)
    got = ((warped[0] + 1) * 127.5).round().to(torch.uint8).movedim(1, -1).numpy()
    want = propagate_flow_warp(video, edited)["frames"]
    assert np.array_equal(got, want)
    assert not np.array_equal(got[-1], video[-1])  # the paint moved into the last frame


def test_flow_anchor_starts_as_the_backbone_and_an_open_flow_gate_anchors_on_the_warp():
    """Zero-initialised: GenProp equals its backbone; the flow channel open: G anchored on the warp (an all-zero
    network at sigma = 1 samples the warp itself); the anchor from a batch's latents equals the one from pixels
    on a lossless latent map; the objective adds it and the flow channel trains."""
    model = _flow_model()
    bb, b = model.backbone, make_batch(model, "wan")
    x_t, t, s = b["model_input"], b["timestep"], b["sce_latents"]
    source = bb.decode_latents(s)
    first = b["video"][:, 0]
    cond = with_flow_anchor(model, b["cond"], source, first)
    from_latents = with_flow_anchor_from_latents(model, b["cond"], s)
    torch.testing.assert_close(from_latents[FLOW_ANCHOR_KEY], cond[FLOW_ANCHOR_KEY], rtol=0, atol=1e-5)
    assert FLOW_ANCHOR_KEY not in b["cond"]  # a copy, the batch's own conditioning is untouched
    with torch.no_grad():
        out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
        assert torch.equal(out.prediction, bb(x_t, t, b["cond"]))
        assert out.gate.shape[2] == 2 and not out.gate.any()
        with pytest.raises(ValueError, match="flow anchor"):
            model(x_t, t, b["cond"], s, b["task_ids"], num_frames=b["num_frames"])
        # 1. the flow channel open (gate channels are the token's last axis: k::2), the source channel shut
        model.source_gate.head.bias[1::2] = 20.0  # tanh(20) = 1 in fp32
        bb.transformer.proj_out.weight.zero_()
        bb.transformer.proj_out.bias.zero_()
        ones = torch.full_like(t, 1000.0)
        v = model(x_t, ones, cond, s, b["task_ids"], num_frames=b["num_frames"]).prediction
        torch.testing.assert_close(x_t - v, cond[FLOW_ANCHOR_KEY], rtol=1e-5, atol=1e-5)
    # 2. the objective computes the anchor from the batch's latents; both channels get a gradient at init
    model = _flow_model().train()
    batch = {"target_latents": bb.encode_video(b["video"]), "cond": b["cond"], "sce_latents": s,
             "mask": torch.zeros(2, b["num_frames"], 32, 32).index_fill_(2, torch.arange(8, 16), 1.0),
             "task_id": b["task_ids"]}
    paper = GenPropObjective(RegionLossConfig(mpd_area_balanced=True), cond_drop_prob=0.0)
    terms = AnchoredObjective(paper, model.config.anchoring)(model, batch, step=0)
    terms["loss"].backward()
    grad = model.source_gate.footprint.weight.grad  # (pv K, pv C K): output rows k::2 are channel k
    assert grad[0::2].abs().sum() > 0 and grad[1::2].abs().sum() > 0
    with pytest.raises(ValueError, match=r"flow_anchor -> anchoring\.flow"):  # a config of the earlier shape
        GenPropConfig.from_dict({**model.config.to_dict(), "source_anchor": True, "flow_anchor": True})


@pytest.mark.parametrize("footprint", [False, True])
def test_an_mpd_that_reads_the_gate_starts_as_the_paper_mpd_and_learns_from_it(footprint):
    """mpd_reads_gate (and mpd_reads_footprint): at initialisation the mask is the paper MPD's exactly (zero maps
    of the gate and its footprints); once the gate is open L_MPD trains the maps, in the gate's learning-rate
    group; the maps' tensors are the only new trainable ones."""
    plain = _flow_model()
    cfg = dataclasses.replace(plain.config, anchoring=dataclasses.replace(
        plain.config.anchoring, gate_lr_scale=10.0, mpd_reads_gate=True, mpd_reads_footprint=footprint))
    model = build_genprop(cfg, backbone=plain.backbone)
    model.load_state_dict(plain.state_dict(), strict=False)
    bb, b = model.backbone, make_batch(model, "wan")
    s = b["sce_latents"]
    cond = with_flow_anchor_from_latents(model, b["cond"], s)
    with torch.no_grad():
        want = plain(b["model_input"], b["timestep"], cond, s, b["task_ids"], num_frames=b["num_frames"])
        got = model(b["model_input"], b["timestep"], cond, s, b["task_ids"], num_frames=b["num_frames"])
    assert torch.equal(got.mask, want.mask) and torch.equal(got.prediction, want.prediction)
    # an open gate now moves the mask once the map is non-zero
    with torch.no_grad():
        model.source_gate.head.bias[1::2] = 20.0
        model.gate_to_mpd.weight.normal_()
        moved = model(b["model_input"], b["timestep"], cond, s, b["task_ids"], num_frames=b["num_frames"]).mask
    assert not torch.allclose(moved, want.mask)
    model = build_genprop(cfg, backbone=plain.backbone).train()
    with torch.no_grad():
        model.source_gate.head.bias[1::2] = 1.0
    batch = {"target_latents": bb.encode_video(b["video"]), "cond": b["cond"], "sce_latents": s,
             "mask": torch.zeros(2, b["num_frames"], 32, 32).index_fill_(2, torch.arange(8, 16), 1.0),
             "task_id": b["task_ids"]}
    paper = GenPropObjective(RegionLossConfig(mpd_area_balanced=True), cond_drop_prob=0.0)
    AnchoredObjective(paper, model.config.anchoring)(model, batch, step=0)["mpd"].backward()
    maps = [model.gate_to_mpd.weight] + ([model.footprint_to_mpd.weight] if footprint else [])
    assert all(w.grad.abs().sum() > 0 for w in maps)
    named = {n: p for n, p in model.named_parameters() if not n.startswith("backbone.")}
    gate_group = next(g for g in model.parameter_groups(named) if g["lr_scale"] == 10.0)
    assert all(any(p is w for p in gate_group["params"]) for w in maps)
    assert set(plain.trainable_state_dict()) | {"gate_to_mpd.weight", "gate_to_mpd.bias"} | (
        {"footprint_to_mpd.weight"} if footprint else set()) == set(model.trainable_state_dict())
    with pytest.raises(ValueError, match="mpd_reads_footprint needs anchoring.mpd_reads_gate"):
        dataclasses.replace(cfg.anchoring, mpd_reads_gate=False, mpd_reads_footprint=True)


def test_propagation_with_an_open_flow_gate_is_the_flow_warp_baseline():
    """The propagator computes the flow anchor from the video it is given: with the flow channel open and an
    all-zero network, one sampling step returns the flow-warp baseline's frames."""
    model = _flow_model()
    with torch.no_grad():
        model.source_gate.head.bias[1::2] = 20.0  # tanh(20) = 1 in fp32
        model.backbone.transformer.proj_out.weight.zero_()
        model.backbone.transformer.proj_out.bias.zero_()
    video, edited = _moving_square()
    result = Propagator(model, PropagationConfig(working_area=32 * 32, window=9, overlap=1, num_steps=1)).run(
        video, edited, "track", task=3)
    want = propagate_flow_warp(video, edited)["frames"]
    assert np.abs(result.raw.astype(int) - want.astype(int)).max() <= 1  # the model's frames, before the composite


def test_first_frame_anchor_is_flow_matching_on_the_difference_from_the_first_frame():
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
    base = make_model("wan")
    bb_cfg = dataclasses.replace(base.config.backbone, first_frame_anchor=True, sigma_data=0.5)
    model = build_genprop(dataclasses.replace(base.config, backbone=bb_cfg, anchoring=AnchoringConfig()))
    bb, b = model.backbone, make_batch(model, "wan")
    x_t, t, cond, s = b["model_input"], b["timestep"], b["cond"], b["sce_latents"]
    with torch.no_grad():
        out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
        assert torch.equal(out.prediction, bb(x_t, t, cond)) and torch.equal(out.gate, torch.zeros_like(
            out.gate))
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
    model = build_genprop(dataclasses.replace(base.config, backbone=bb_cfg, anchoring=AnchoringConfig()))
    out = model(x_t, t, cond, s, b["task_ids"], num_frames=b["num_frames"])
    out.prediction.square().mean().backward()
    assert model.source_gate.head.weight.grad.abs().sum() > 0
    assert model.source_gate.footprint.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="anchoring needs a Wan backbone"):
        build_genprop(dataclasses.replace(make_model("svd").config, anchoring=AnchoringConfig()))


def test_gate_term_supervises_the_source_anchor_gate_area_balanced():
    m = torch.zeros(2, 3, 1, 4, 4)
    m[:, :, :, :1, :1] = 1.0  # a 1/16 edit region
    assert gate_term(1 - m, m) == 0
    # a gate open everywhere is wrong on the whole (small) edit region: that region's mean error counts fully
    torch.testing.assert_close(gate_term(torch.ones_like(m), m), torch.tensor(1.0))
    torch.testing.assert_close(gate_term(torch.zeros_like(m), m), torch.tensor(1.0))
    # an empty mask: only the keep term
    torch.testing.assert_close(gate_term(torch.full_like(m, 0.5), torch.zeros_like(m)), torch.tensor(0.25))
    # a flow-anchor gate (K = 2): its flow channel towards its own target, area-balanced as well
    assert gate_term(torch.cat([1 - m, m], dim=2), m, m) == 0
    torch.testing.assert_close(gate_term(torch.cat([1 - m, torch.zeros_like(m)], dim=2), m, m), torch.tensor(1.0))


def test_flow_gate_target_is_where_the_flow_anchor_is_the_closest_anchor():
    x0 = torch.zeros(1, 2, 3, 2, 2)
    a, s, w = torch.full_like(x0, 1.0), torch.full_like(x0, 2.0), torch.full_like(x0, 0.5)
    w[:, 1] = 3.0  # the flow drifted off on the second frame
    w[:, 0, :, 0, 0] = s[:, 0, :, 0, 0]  # where the warp left the source as it was: no preference
    x0[:, 0, :, 1, 1] = 0.4  # a position the edit covers in part still gets the whole target where the warp is right
    want = torch.zeros(1, 2, 1, 2, 2)
    want[:, 0] = 1
    want[:, 0, :, 0, 0] = 0
    assert torch.equal(flow_gate_target(x0, a, s, w), want)


def test_the_source_anchor_gate_trains_at_its_own_learning_rate():
    """gate_lr_scale: the gate's heads form their own AdamW group at the scaled rate; the schedule scales both."""
    base = GenPropConfig.tiny("wan")
    bb = dataclasses.replace(base.backbone, first_frame_anchor=True)
    anchoring = AnchoringConfig(flow=True, gate_lr_scale=10.0)
    model = build_genprop(dataclasses.replace(base, backbone=bb, anchoring=anchoring))
    trainer = Trainer(model, TrainConfig.tiny(lr=1e-3, warmup_steps=0))
    rest, gate = trainer.optimizer.param_groups
    assert {id(p) for p in gate["params"]} == {id(p) for p in model.source_gate.parameters()}
    assert not {id(p) for p in gate["params"]} & {id(p) for p in rest["params"]}
    assert gate["lr"] == pytest.approx(10 * rest["lr"]) and rest["lr"] == pytest.approx(1e-3)
    assert len(Trainer(GenPropModel(base), TrainConfig.tiny()).optimizer.param_groups) == 1  # no gate: one group
