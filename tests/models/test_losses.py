"""The region-aware loss: normalisation, weights, L_grad's finite difference, mask shaping."""

from __future__ import annotations

import torch
import torch.nn as nn

from genprop.losses import (RegionLossConfig, compress_time, drop_task_ids, gaussian_downsample, grad_term,
                            loss_masks, region_aware_loss, region_terms)
from genprop.models.genprop_model import GenPropOutput
from genprop.models.backbones.latent_maps import PixelUnshuffleLatents


def _out(pred, mask_pred, feats=None, feats_p=None, delta=0.0):
    return GenPropOutput(prediction=pred, mask=mask_pred, sce_features=feats or [], sce_features_perturbed=feats_p,
                         delta=delta)


def test_zero_mask_gives_plain_mse():
    g = torch.Generator().manual_seed(0)
    pred, tgt = torch.randn(2, 3, 4, 8, 8, generator=g), torch.randn(2, 3, 4, 8, 8, generator=g)
    l_mask, l_non = region_terms(pred, tgt, torch.zeros(2, 3, 1, 8, 8))
    assert l_mask == 0
    torch.testing.assert_close(l_non, torch.nn.functional.mse_loss(pred, tgt))


def test_area_normalisation_small_and_large_objects():
    pred, tgt = torch.ones(1, 1, 1, 8, 8), torch.zeros(1, 1, 1, 8, 8)
    small, large = torch.zeros(1, 1, 1, 8, 8), torch.zeros(1, 1, 1, 8, 8)
    small[..., :1, :1] = 1
    large[..., :6, :6] = 1
    assert region_terms(pred, tgt, small)[0] == region_terms(pred, tgt, large)[0] == 1


def test_weights_scale_their_terms():
    g = torch.Generator().manual_seed(1)
    pred, tgt = torch.randn(1, 2, 4, 8, 8, generator=g), torch.randn(1, 2, 4, 8, 8, generator=g)
    m = torch.zeros(1, 2, 1, 8, 8)
    m[..., 2:5, 2:5] = 1
    f = [torch.randn(1, 2, 3, 4, 4, generator=g)]
    fp = [f[0] + 0.01 * torch.randn(1, 2, 3, 4, 4, generator=g)]
    out = _out(pred, torch.rand(1, 2, 8, 8, generator=g), f, fp, 0.01)
    mpd_tgt = m[:, :, 0]
    base = region_aware_loss(out, tgt, m, mpd_tgt, RegionLossConfig(mask_weight=0, grad_weight=0, mpd_weight=0))
    assert all(base[k] > 0 for k in ("non_mask", "mask", "grad", "mpd"))
    torch.testing.assert_close(base["loss"], base["non_mask"])
    for field, term in (("mask_weight", "mask"), ("grad_weight", "grad"), ("mpd_weight", "mpd")):
        for w in (1.0, 3.0):
            cfg = RegionLossConfig(**{"mask_weight": 0, "grad_weight": 0, "mpd_weight": 0, field: w})
            got = region_aware_loss(out, tgt, m, mpd_tgt, cfg)
            torch.testing.assert_close(got["loss"], base["non_mask"] + w * base[term])
    default = region_aware_loss(out, tgt, m, mpd_tgt)
    torch.testing.assert_close(default["loss"], base["non_mask"] + 2 * base["mask"] + base["grad"] + base["mpd"])


def test_lazy_grad_term_runs_every_kth_step_weighted_by_k():
    g = torch.Generator().manual_seed(2)
    pred, tgt = torch.randn(1, 2, 4, 8, 8, generator=g), torch.randn(1, 2, 4, 8, 8, generator=g)
    m = torch.zeros(1, 2, 1, 8, 8)
    m[..., 2:5, 2:5] = 1
    f = [torch.randn(1, 2, 3, 4, 4, generator=g)]
    out = _out(pred, torch.rand(1, 2, 8, 8, generator=g), f, [f[0] + 0.01], 0.01)
    one = region_aware_loss(out, tgt, m, m[:, :, 0], RegionLossConfig())
    lazy_cfg = RegionLossConfig(grad_every=3)
    lazy = region_aware_loss(out, tgt, m, m[:, :, 0], lazy_cfg)
    torch.testing.assert_close(lazy["loss"] - one["loss"], 2 * one["grad"])
    assert [lazy_cfg.grad_delta_at(s) for s in range(4)] == [0.01, 0.0, 0.0, 0.01]
    assert [RegionLossConfig().grad_delta_at(s) for s in range(3)] == [0.01] * 3


def test_grad_term_zero_for_encoder_ignoring_the_mask_and_positive_otherwise():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    m = torch.zeros(1, 2, 1, 8, 8)
    m[..., 2:5, 2:5] = 1
    x = torch.randn(1, 2, 4, 8, 8)
    delta = 1e-2

    def enc(v, ignore):
        v = v * (1 - m) if ignore else v  # an encoder that never looks inside the mask
        return [conv(v.flatten(0, 1)).unflatten(0, (1, 2))]

    for ignore, positive in ((True, False), (False, True)):
        f, fp = enc(x, ignore), enc(x + delta * m, ignore)
        val = grad_term(f, fp, delta, m)
        assert (val > 1e-2) if positive else (val < 1e-6), (ignore, float(val))


def test_grad_term_runs_in_fp32_under_bf16_autocast():
    f = [torch.zeros(1, 1, 2, 4, 4, dtype=torch.bfloat16)]
    fp = [torch.full((1, 1, 2, 4, 4), 1e-3, dtype=torch.bfloat16)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        val = grad_term(f, fp, 1e-3, torch.ones(1, 1, 1, 4, 4))
    assert val.dtype == torch.float32


def test_mask_shaping():
    mask = torch.zeros(1, 9, 32, 32)
    mask[:, 3, 8:16, 8:16] = 1
    grid = gaussian_downsample(mask, 4)
    assert grid.shape == (1, 9, 8, 8) and 0 <= grid.min() and grid.max() <= 1 and grid[:, 3].sum() > 0
    lat = compress_time(grid, 4, 3)  # frame 0 | frames 1-4 | frames 5-8
    assert lat.shape == (1, 3, 8, 8) and lat[:, 0].sum() == 0 and lat[:, 1].sum() > 0 and lat[:, 2].sum() == 0
    latent_mask, mpd_target = loss_masks(mask, PixelUnshuffleLatents(4), 9)
    assert latent_mask.shape == (1, 9, 1, 8, 8) and mpd_target.shape == (1, 9, 8, 8)


def test_drop_task_ids():
    ids = torch.full((1000,), 2)
    dropped = drop_task_ids(ids, 0.25, torch.Generator().manual_seed(0))
    assert set(dropped.tolist()) == {0, 2} and 150 < int((dropped == 0).sum()) < 350
    assert torch.equal(drop_task_ids(ids, 0.0), ids)


def test_area_balanced_mpd_loss_is_not_outvoted_by_the_background():
    """mpd_area_balanced: an all-zero mask prediction of a 1/16 object costs 1 (the whole object is wrong), where
    the paper's plain MSE charges it 1/16 and the decoder learns to stay below its 0.5 threshold."""
    from types import SimpleNamespace

    m = torch.zeros(2, 3, 4, 4)
    m[:, :, :1, :1] = 1.0
    latent_mask = m[:, :, None]
    pred = torch.zeros(2, 3, 1, 4, 4)
    out = SimpleNamespace(prediction=pred, mask=torch.zeros_like(m), sce_features=[], sce_features_perturbed=None,
                          delta=0.0, source_gate=None)
    plain = region_aware_loss(out, pred, latent_mask, m, RegionLossConfig())["mpd"]
    balanced = region_aware_loss(out, pred, latent_mask, m, RegionLossConfig(mpd_area_balanced=True))["mpd"]
    torch.testing.assert_close(plain, torch.tensor(1 / 16))
    torch.testing.assert_close(balanced, torch.tensor(1.0))
    out.mask = m.clone()
    assert region_aware_loss(out, pred, latent_mask, m, RegionLossConfig(mpd_area_balanced=True))["mpd"] == 0
