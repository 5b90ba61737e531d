"""model_info on the real configurations (meta device, no weights)."""

from __future__ import annotations

import pytest

from genprop.models.info import model_info


def test_svd_xt_counts():
    info = model_info("svd")
    assert set(info) == {"backbone", "sce", "mpd", "trainable", "total"}
    assert 1.51e9 < info["backbone"] < 1.53e9
    assert info["trainable"] >= info["sce"] + info["mpd"]
    assert info["total"] == info["backbone"] + info["trainable"]
    assert model_info("svd", sce_blocks=4)["sce"] > info["sce"]


def test_wan_i2v_14b_counts():
    info = model_info("wan")
    assert 14e9 < info["backbone"] < 16.45e9  # 16.39e9 incl. image embedder and added K/V
    per_block = (model_info("wan", sce_blocks=11)["sce"] - info["sce"])
    assert 0.3e9 < per_block < 0.5e9
    assert info["total"] == info["backbone"] + info["trainable"]


def test_unknown_backbone():
    with pytest.raises(ValueError, match="expected 'svd' or 'wan'"):
        model_info("sd3")
