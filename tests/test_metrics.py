"""Metrics against hand-computed values; CLIP from a tiny random CLIPModel; JSON-safe PSNR."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from genprop import metrics


def test_psnr_m_on_a_constructed_pair():
    original = np.full((2, 4, 4, 3), 100, np.uint8)
    output = original.copy()
    output[:, :2, :2] = 200  # the edit (inside the mask): ignored by PSNR_m
    output[0, 3, 3] = 110  # one pixel outside the mask is off by 10 in every channel
    mask = np.zeros((2, 4, 4), bool)
    mask[:, :2, :2] = True
    # 24 pixels outside the mask, one with squared error 100 -> MSE 100 / 24
    assert metrics.psnr_m(output, original, mask) == pytest.approx(10 * math.log10(255**2 * 24 / 100))
    # shape change: the union with the edited object's region also leaves (3, 3) out
    edited = np.zeros_like(mask)
    edited[0, 3, 3] = True
    assert metrics.psnr_m(output, original, mask, edited) == metrics.PSNR_CAP
    # a rough (dilated) mask covers more: radius 1 around the 2x2 block leaves 7 pixels per frame
    assert metrics.psnr_m(output, original, mask, radius=1) == pytest.approx(10 * math.log10(255**2 * 14 / 100))
    assert metrics.psnr_m(output, original, np.ones_like(mask)) is None


def test_psnr_identical_is_capped_and_json_safe():
    a = np.random.default_rng(0).integers(0, 255, (3, 5, 5, 3), dtype=np.uint8)
    assert metrics.psnr(a, a) == 100.0
    json.dumps({"psnr": metrics.psnr(a, a)}, allow_nan=False)
    assert metrics.psnr(np.zeros((1, 1, 1, 3)), np.full((1, 1, 1, 3), 255.0)) == 0.0


def test_ssim():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (2, 24, 24, 3), dtype=np.uint8)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert 0 < metrics.ssim(a, noisy) < 0.95
    # constant images: sigma terms vanish, SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    c1 = (0.01 * 255) ** 2
    flat = np.full((1, 16, 16, 3), 100, np.uint8)
    assert metrics.ssim(flat, flat + 10) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))


def test_iou_and_j_and_f():
    pred = np.zeros((1, 10, 10), bool)
    gt = np.zeros((1, 10, 10), bool)
    pred[0, 0:4, 0:5] = True  # 20 px
    gt[0, 2:6, 0:5] = True  # 20 px, 10 shared
    assert metrics.iou(pred, gt) == pytest.approx(10 / 30)
    assert metrics.iou(np.zeros_like(gt), np.zeros_like(gt)) == 1.0
    jf = metrics.j_and_f(gt, gt)
    assert jf == {"j": 1.0, "f": 1.0, "jf": 1.0}
    far = np.zeros((1, 40, 40), bool)
    far[0, 30:35, 30:35] = True
    near = np.zeros((1, 40, 40), bool)
    near[0, 2:7, 2:7] = True
    assert metrics.j_and_f(far, near)["f"] == 0.0 and metrics.j_and_f(far, near)["j"] == 0.0


@pytest.fixture(scope="module")
def tiny_clip():
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=32, bos_token_id=97,
                                      eos_token_id=98, pad_token_id=0),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=16)
    return CLIPModel(cfg)


def test_clip_metrics(tiny_clip, tmp_path):
    scorer = metrics.ClipScorer(tiny_clip)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)
    same = np.repeat(frame, 4, axis=0)
    assert metrics.clip_i(scorer, same) == pytest.approx(1.0, abs=1e-5)
    other = rng.integers(0, 255, (4, 40, 50, 3), dtype=np.uint8)
    assert metrics.clip_i(scorer, other) < 0.999
    ct = metrics.clip_t(scorer, other, "a red star")
    e_img, e_txt = scorer.image_embeddings(other), scorer.text_embedding("a red star")
    assert ct == pytest.approx(float((e_img @ e_txt).mean())) and -1 <= ct <= 1
    assert metrics.clip_t(scorer, other, "a red star") != metrics.clip_t(scorer, other, "remove the blue ring")
    # no weights -> null, never a number
    assert metrics.clip_t(None, other, "x") is None and metrics.clip_i(None, other) is None
    assert metrics.ClipScorer.load(None) is None and metrics.ClipScorer.load(str(tmp_path)) is None
    tiny_clip.save_pretrained(str(tmp_path / "clip"))
    loaded = metrics.ClipScorer.load(str(tmp_path / "clip"))
    assert metrics.clip_t(loaded, other, "a red star") == pytest.approx(ct, abs=1e-5)
