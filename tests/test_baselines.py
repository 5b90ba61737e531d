"""Classical baselines on procedural cases: flow-warp beats identity on removal; tracking follows the object."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genprop import masks, metrics
from genprop.baselines import propagate_flow_warp, propagate_identity, propagate_track_inpaint
from genprop.datasets.procedural import WorldConfig, write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("world"))
    write_world(root, WorldConfig(videos=1, frames=8, height=48, width=64))
    return root


def _case(world, task):
    import glob

    (d,) = [d for d in glob.glob(f"{world}/cases/*") if json.load(open(f"{d}/case.json"))["task"] == task]
    gt = np.load(f"{d}/ground_truth.npz")
    return gt, masks.read_image(f"{d}/edited_first_frame.png")


def test_flow_warp_beats_identity_on_removal(world):
    gt, edited = _case(world, "remove")
    ident = propagate_identity(gt["original"], edited)
    warp = propagate_flow_warp(gt["original"], edited)
    assert np.array_equal(ident["frames"], gt["original"]) and ident["mask"] is None
    p_id, p_fw = metrics.psnr(ident["frames"], gt["target"]), metrics.psnr(warp["frames"], gt["target"])
    assert p_fw > p_id + 3, (p_fw, p_id)
    assert np.array_equal(warp["frames"][0], edited)
    assert warp["frames"].shape == gt["original"].shape and warp["mask"].shape == gt["mask"].shape


def test_track_inpaint_removes_and_tracks(world):
    gt, edited = _case(world, "remove")
    out = propagate_track_inpaint(gt["original"], edited, "remove")
    assert metrics.psnr(out["frames"], gt["target"]) > metrics.psnr(gt["original"], gt["target"]) + 3
    assert metrics.iou(out["mask"][1:], gt["mask"][1:]) > 0.3


def test_track_inpaint_pastes_a_colour_fill(world):
    gt, edited = _case(world, "track")
    out = propagate_track_inpaint(gt["original"], edited, "track")
    assert metrics.psnr(out["frames"], gt["target"]) > metrics.psnr(gt["original"], gt["target"])


def test_flow_warp_follows_a_moving_square():
    frames = np.full((6, 32, 32, 3), 60, np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    frames[..., 0] = (xx * 4 + yy * 2).astype(np.uint8)  # textured background for the flow
    for t in range(6):
        frames[t, 10:18, 4 + 2 * t:12 + 2 * t] = (200, 200, 40)
    edited = frames[0].copy()
    edited[10:18, 4:12] = (20, 20, 240)
    out = propagate_flow_warp(frames, edited)
    last_square = out["frames"][5, 11:17, 15:19]
    assert np.abs(last_square.astype(int) - (20, 20, 240)).max(axis=-1).mean() < 60


def test_flow_is_composed_to_frame_one_and_sized_to_the_frame():
    """propagate_layer samples the frame-1 layer once per frame through the composed flow, so a layer carried over
    many frames keeps its colour (warping the previous warp resamples it every frame and blurs it); Farnebäck's
    window follows the frame size."""
    from genprop.baselines.flow import FARNEBACK, farneback_params, propagate_layer

    t = 12
    frames = np.zeros((t, 32, 32, 3), np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    frames[..., 1] = ((xx * 37 + yy * 17) % 97 + 60).astype(np.uint8)  # texture
    for k in range(t):
        frames[k, 10:20, 4 + k:14 + k] = (230, 40, 40)
    layer = np.zeros((32, 32, 3), np.float32)
    layer[10:20, 4:14] = (0, 0, 255)
    alpha = np.zeros((32, 32), np.float32)
    alpha[10:20, 4:14] = 1
    layers, alphas = propagate_layer(frames, layer, alpha)
    inside = alphas[-1] >= 0.5
    assert inside.sum() >= 60 and inside[12:18, 8 + t:12 + t].all()  # followed the square 11 px
    # the layer's colour inside the tracked region of the last frame is the frame-1 colour, not a blur of it
    assert np.abs(layers[-1][inside] - (0, 0, 255)).max(axis=-1).mean() < 8
    assert farneback_params(32, 32)["winsize"] == 5 and farneback_params(480, 854) == FARNEBACK
