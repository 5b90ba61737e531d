"""The evaluation job: metrics.json schema, baselines run on every case, nulls where unknown, report.html."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from genprop import video
from genprop.datasets.procedural import WorldConfig, write_world
from genprop.propagation.tracking import write_mask_video

METHODS = ["genprop", "genprop_raw", "identity", "flow_warp", "track_inpaint"]
METRICS = ["psnr_m", "psnr_gt", "ssim_gt", "psnr_effect", "clip_t", "clip_i", "iou"]


def _no_nan(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    write_world(str(root / "world"), WorldConfig(videos=1, frames=8, height=48, width=64))
    pred = root / "pred"
    pred.mkdir()
    cases = sorted((root / "world" / "cases").iterdir())
    for d in cases:
        gt = np.load(d / "ground_truth.npz")
        cid = d.name
        if "_remove_" in cid or "_track_" in cid:  # an oracle prediction: the target itself, and the true mask
            video.encode(gt["target"], str(pred / f"{cid}.mp4"), "12", lossless=True)
            write_mask_video(gt["mask"], str(pred / f"{cid}_mask.mp4"), "12")
        elif "_insert_" in cid:  # a prediction of the wrong size: reported as null
            video.encode(gt["target"][:, :32, :32], str(pred / f"{cid}.mp4"), "12")
        # other cases: no prediction at all
    return root


def test_evaluate_job_metrics_and_report(world, tmp_path):
    from jobs.cli import main

    out = tmp_path / "out"
    assert main(["evaluate", "--cases", str(world / "world"), "--predictions", str(world / "pred"),
                 "--out", str(out)]) == 0
    data = _no_nan((out / "metrics.json").read_text())
    assert set(data) == {"cases", "summary"}
    assert sorted(data["summary"]) == sorted(METHODS)
    assert all(list(v) == METRICS for v in data["summary"].values())
    assert len(data["cases"]) == 5 * len(METHODS)
    for row in data["cases"]:
        assert list(row) == ["id", "task", "method", *METRICS]
    by = {(r["task"], r["method"]): r for r in data["cases"]}
    # baselines run on every case; identity keeps everything outside the edit: the PSNR cap, not infinity
    assert by[("remove", "identity")]["psnr_m"] == 100.0
    assert by[("remove", "flow_warp")]["psnr_gt"] > by[("remove", "identity")]["psnr_gt"]
    assert by[("remove", "flow_warp")]["psnr_effect"] is not None and by[("replace", "flow_warp")]["psnr_effect"] is None
    # the oracle prediction scores near-perfect; its mask video gives IoU 1; a track case's colour IoU is high
    assert by[("remove", "genprop")]["psnr_gt"] > 45 and by[("remove", "genprop")]["iou"] == pytest.approx(1.0)
    assert by[("track", "genprop")]["iou"] > 0.8
    # the tracker is scored by the region it tracked (the floor's baseline), a propagation by its painted change
    from genprop.baselines import propagate_track_inpaint
    from genprop.metrics import iou

    track_dir = next(d for d in sorted((world / "world" / "cases").iterdir()) if "_track_" in d.name)
    gt = np.load(track_dir / "ground_truth.npz")
    tracked = propagate_track_inpaint(gt["original"], gt["target"][0], "track")["mask"]
    assert by[("track", "track_inpaint")]["iou"] == pytest.approx(iou(tracked, gt["mask"]))
    # missing and wrong-size predictions: null, not a number
    for task in ("insert", "background", "replace"):
        assert all(by[(task, "genprop")][m] is None for m in METRICS)
    # no CLIP weights: CLIP metrics null everywhere
    assert all(r["clip_t"] is None and r["clip_i"] is None for r in data["cases"])
    assert data["summary"]["genprop"]["psnr_gt"] == pytest.approx(
        np.mean([by[("remove", "genprop")]["psnr_gt"], by[("track", "genprop")]["psnr_gt"]]))
    page = (out / "report.html").read_text()
    srcs = re.findall(r"(?:src|poster)='([^']+)'", page)
    assert any(s.endswith(".mp4") for s in srcs) and all(not s.startswith("/") for s in srcs)
    for s in srcs:
        assert (out / s).is_file(), s
    assert page.count("<video") == 5 * 6 - 3  # original, genprop (2 cases), 3 baselines, ground truth
    assert page.count("strip.png") == 5 and "mean_metrics.png" in page and "<table>" in page
    for name in ("original", "edited first frame", "genprop", "identity", "flow_warp", "track_inpaint",
                 "ground truth"):
        assert f">{name}</div>" in page


def test_evaluate_with_tiny_clip_and_limit(world, tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from jobs.evaluate import main

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=32, bos_token_id=97,
                                      eos_token_id=98, pad_token_id=0),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8), projection_dim=16)
    CLIPModel(cfg).save_pretrained(str(tmp_path / "clip"))
    out = tmp_path / "out"
    assert main(["--cases", str(world / "world" / "cases"), "--predictions", str(world / "pred"), "--out", str(out),
                 "--clip", str(tmp_path / "clip"), "--limit", "2"]) == 0
    data = _no_nan((out / "metrics.json").read_text())
    assert len({r["id"] for r in data["cases"]}) == 2
    ident = [r for r in data["cases"] if r["method"] == "identity"]
    assert all(-1 <= r["clip_t"] <= 1 and -1 <= r["clip_i"] <= 1.0001 for r in ident)
    assert data["summary"]["identity"]["clip_i"] is not None


def test_evaluate_without_cases_is_a_clear_error(tmp_path, capsys):
    from jobs.evaluate import main

    assert main(["--cases", str(tmp_path), "--predictions", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no cases" in capsys.readouterr().err
