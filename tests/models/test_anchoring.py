"""The flow anchor: the flow-warp baseline's video as a second anchor of the source-anchor gate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genprop.baselines import propagate_flow_warp
from genprop.losses import RegionLossConfig
from genprop.models import GenPropConfig, GenPropModel
from genprop.models.flow_anchor import (FLOW_ANCHOR_KEY, flow_warped_edit, with_flow_anchor,
                                        with_flow_anchor_from_latents)
from genprop.propagation import PropagationConfig, Propagator
from genprop.training.objectives import GenPropObjective
from tests.models.helpers import make_batch, make_model


def _flow_model() -> GenPropModel:
    base = make_model("wan")
    bb_cfg = dataclasses.replace(base.config.backbone, first_frame_anchor=True, sigma_data=0.5)
    return GenPropModel(dataclasses.replace(base.config, backbone=bb_cfg, source_anchor=True, flow_anchor=True))


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
        assert out.source_gate.shape[2] == 2 and not out.source_gate.any()
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
    terms = GenPropObjective(RegionLossConfig(mpd_area_balanced=True), cond_drop_prob=0.0)(model, batch, step=0)
    terms["loss"].backward()
    grad = model.source_gate.footprint.weight.grad  # (pv K, pv C K): output rows k::2 are channel k
    assert grad[0::2].abs().sum() > 0 and grad[1::2].abs().sum() > 0
    with pytest.raises(ValueError, match="needs source_anchor"):
        GenPropConfig(flow_anchor=True)


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
