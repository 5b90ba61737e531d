"""The evaluation job: metrics.json schema, baselines run on every case, nulls where unknown or undefined, means by
task over the cases where each metric is defined, GenProp's two tracking masks as rows of their own, report.html."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from PIL import Image

from genprop import video
from genprop.datasets.procedural import WorldConfig, write_world
from genprop.propagation.tracking import write_mask_video

METHODS = ["genprop", "genprop_mpd", "genprop_raw", "identity", "flow_warp", "track_inpaint"]
FRAME_METHODS = [m for m in METHODS if m != "genprop_mpd"]  # genprop_mpd: the MPD's mask, IoU only
METRICS = ["psnr_m", "psnr_gt", "ssim_gt", "psnr_effect", "clip_t", "clip_i", "iou"]
OVERALL = ["psnr_m", "psnr_gt", "ssim_gt", "clip_t", "clip_i"]  # the metrics defined on every case
TASKS = ["remove", "replace", "insert", "background", "track"]


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
            # the MPD's mask: the true one on the removal (never scored: IoU is a tracking metric), the object
            # without its effects on the tracking case
            mpd = gt["mask"] if "_remove_" in cid else gt["mask"] & ~gt["effect_mask"]
            write_mask_video(mpd, str(pred / f"{cid}_mpd.mp4"), "12")
        if "_track_" in cid:  # the model's frames without the composite
            video.encode(gt["target"], str(pred / f"{cid}_raw.mp4"), "12", lossless=True)
        elif "_insert_" in cid:  # a prediction of the wrong size: reported as null
            video.encode(gt["target"][:, :32, :32], str(pred / f"{cid}.mp4"), "12")
        # other cases: no prediction at all
    return root


@pytest.fixture(scope="module")
def evaluated(world, tmp_path_factory):
    from jobs.cli import main

    out = tmp_path_factory.mktemp("evaluated") / "out"
    assert main(["evaluate", "--cases", str(world / "world"), "--predictions", str(world / "pred"),
                 "--out", str(out)]) == 0
    return out


def _case_dir(world, task):
    return next(d for d in sorted((world / "world" / "cases").iterdir()) if f"_{task}" in d.name)


def test_evaluate_job_metrics_and_report(world, evaluated):
    out = evaluated
    data = _no_nan((out / "metrics.json").read_text())
    assert set(data) == {"cases", "summary", "counts", "by_task", "labels"}
    assert sorted(data["summary"]) == sorted(FRAME_METHODS)
    assert all(list(v) == OVERALL for v in data["summary"].values())
    assert len(data["cases"]) == 5 * len(METHODS)
    for row in data["cases"]:
        assert list(row) == ["id", "task", "method", *METRICS]
    by = {(r["task"], r["method"]): r for r in data["cases"]}
    # baselines run on every case; identity keeps everything outside the edit: the PSNR cap, not infinity
    assert by[("remove", "identity")]["psnr_m"] == 100.0
    assert by[("remove", "flow_warp")]["psnr_gt"] > by[("remove", "identity")]["psnr_gt"]
    assert by[("remove", "flow_warp")]["psnr_effect"] is not None and by[("replace", "flow_warp")]["psnr_effect"] is None
    # the oracle prediction scores near-perfect; a track case's painted-change IoU is high
    assert by[("remove", "genprop")]["psnr_gt"] > 45
    assert by[("track", "genprop")]["iou"] > 0.8 and by[("track", "genprop_raw")]["iou"] > 0.8
    # IoU is a tracking metric: null on every other case, even where a method has a perfect mask video
    assert all(r["iou"] is None for r in data["cases"] if r["task"] != "track")
    # the tracker is scored by the region it tracked (the floor's baseline), a propagation by its painted change,
    # the MPD by its mask video
    from genprop.baselines import propagate_track_inpaint
    from genprop.metrics import iou

    gt = np.load(_case_dir(world, "track") / "ground_truth.npz")
    tracked = propagate_track_inpaint(gt["original"], gt["target"][0], "track")["mask"]
    assert by[("track", "track_inpaint")]["iou"] == pytest.approx(iou(tracked, gt["mask"]))
    mpd_iou = iou(gt["mask"] & ~gt["effect_mask"], gt["mask"])
    assert by[("track", "genprop_mpd")]["iou"] == pytest.approx(mpd_iou) and mpd_iou < 0.99
    # the MPD's mask has no frames: only its IoU, on tracking cases
    assert all(r[m] is None for r in data["cases"] if r["method"] == "genprop_mpd" for m in METRICS if m != "iou")
    # missing and wrong-size predictions: null, not a number
    for task in ("insert", "background", "replace"):
        assert all(by[(task, "genprop")][m] is None for m in METRICS)
    # no CLIP weights: CLIP metrics null everywhere
    assert all(r["clip_t"] is None and r["clip_i"] is None for r in data["cases"])
    assert data["summary"]["genprop"]["psnr_gt"] == pytest.approx(
        np.mean([by[("remove", "genprop")]["psnr_gt"], by[("track", "genprop")]["psnr_gt"]]))
    assert data["counts"]["genprop"]["psnr_gt"] == 2 and data["counts"]["identity"]["psnr_gt"] == 5
    page = (out / "report.html").read_text()
    srcs = re.findall(r"(?:src|poster)='([^']+)'", page)
    assert any(s.endswith(".mp4") for s in srcs) and all(not s.startswith("/") for s in srcs)
    for s in srcs:
        assert (out / s).is_file(), s
    # original, genprop (2 cases), genprop_raw (1), 3 baselines, ground truth; never the MPD's mask
    assert page.count("<video") == 5 * 5 + 2 + 1
    assert page.count("strip.png") == 5 and "mean_metrics.png" in page and "<table>" in page
    assert "iou_per_case.png" in page
    for name in ("original", "edited first frame", "genprop", "identity", "flow_warp", "track_inpaint",
                 "ground truth"):
        assert f">{name}</div>" in page


def test_tracking_iou_is_averaged_over_tracking_cases_only(world, evaluated):
    """A removal (whose GenProp mask video is perfect: IoU 1 if it were scored) never enters the tracking mean."""
    data = _no_nan((evaluated / "metrics.json").read_text())
    track = {r["method"]: r for r in data["cases"] if r["task"] == "track"}
    assert sum(r["task"] == "track" for r in data["cases"] if r["method"] == "genprop") == 1
    for task, entry in data["by_task"].items():
        assert ("iou" in entry["defined"]) == (task == "track")
        assert all("iou" not in v for v in entry["summary"].values()) or task == "track"
    entry = data["by_task"]["track"]
    assert entry["defined"]["iou"] == 1
    for method in ("genprop", "genprop_mpd", "genprop_raw", "flow_warp", "track_inpaint"):
        assert entry["summary"][method]["iou"] == pytest.approx(track[method]["iou"]), method
        assert entry["counts"][method]["iou"] == 1, method
    # every IoU mean metrics.json holds, per task or over all cases: the tracking case's alone
    sections = [(data["summary"], data["counts"])] + [(e["summary"], e["counts"]) for e in data["by_task"].values()]
    for method in ("genprop", "genprop_mpd", "flow_warp", "track_inpaint"):
        found = [(means[method]["iou"], counts[method]["iou"]) for means, counts in sections
                 if "iou" in means.get(method, {})]
        assert found == [(pytest.approx(track[method]["iou"]), 1)], method


def test_metrics_json_holds_means_and_counts_by_task(world, evaluated):
    data = _no_nan((evaluated / "metrics.json").read_text())
    assert list(data["by_task"]) == TASKS
    effects = bool(np.load(_case_dir(world, "remove") / "ground_truth.npz")["effect_mask"].any())
    for task, entry in data["by_task"].items():
        assert set(entry) == {"cases", "defined", "summary", "counts"} and entry["cases"] == 1
        expected = [m for m in METRICS if (m != "iou" or task == "track")
                    and (m != "psnr_effect" or (task == "remove" and effects))]
        assert list(entry["defined"]) == expected and all(n == 1 for n in entry["defined"].values())
        rows = {r["method"]: r for r in data["cases"] if r["task"] == task}
        for method, means in entry["summary"].items():
            assert list(means) == list(entry["counts"][method])
            for m, v in means.items():  # one case per task: the mean is the case's value, n whether it has one
                assert v == (None if rows[method][m] is None else pytest.approx(rows[method][m]))
                assert entry["counts"][method][m] == (rows[method][m] is not None)
        # the MPD's mask is a row of the tracking task only; a missing prediction is counted 0, not scored 0
        assert ("genprop_mpd" in entry["summary"]) == (task == "track")
    assert data["by_task"]["insert"]["counts"]["genprop"]["psnr_gt"] == 0
    assert data["by_task"]["insert"]["summary"]["genprop"]["psnr_gt"] is None
    assert data["labels"]["genprop"] == "genprop (painted change)"
    assert data["labels"]["genprop_mpd"] == "genprop (MPD mask)"


def test_summarise_ignores_values_where_a_metric_is_undefined():
    from genprop.report import summarise

    rows = [{"id": "t", "task": "track", "method": "genprop", "psnr_m": 30.0, "psnr_gt": 20.0, "ssim_gt": 0.5,
             "psnr_effect": None, "clip_t": None, "clip_i": None, "iou": 0.4},
            {"id": "r", "task": "remove", "method": "genprop", "psnr_m": 40.0, "psnr_gt": 30.0, "ssim_gt": 0.7,
             "psnr_effect": 25.0, "clip_t": None, "clip_i": None, "iou": 1.0}]  # a removal's IoU: not defined
    defined = {("t", "genprop"): ("psnr_m", "psnr_gt", "ssim_gt", "iou"),
               ("r", "genprop"): ("psnr_m", "psnr_gt", "ssim_gt", "psnr_effect")}
    out = summarise(rows, defined)
    assert out["by_task"]["track"]["summary"]["genprop"]["iou"] == 0.4
    assert out["by_task"]["track"]["counts"]["genprop"]["iou"] == 1
    assert "iou" not in out["by_task"]["remove"]["summary"]["genprop"]
    assert out["by_task"]["remove"]["summary"]["genprop"]["psnr_effect"] == 25.0
    assert out["summary"] == {"genprop": {"psnr_m": 35.0, "psnr_gt": 25.0, "ssim_gt": pytest.approx(0.6)}}
    assert out["counts"] == {"genprop": {"psnr_m": 2, "psnr_gt": 2, "ssim_gt": 2}}


def test_report_table_by_task_has_the_two_genprop_masks_as_rows(world, evaluated, tmp_path, capsys):
    from jobs import report

    data = _no_nan((evaluated / "metrics.json").read_text())
    track = {r["method"]: r["iou"] for r in data["cases"] if r["task"] == "track"}
    assert report.main(["--evaluation", str(evaluated), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "| genprop (MPD mask) |" in capsys.readouterr().out  # printed as well
    by_task, overall = text.split("Over all")
    lines = {line.split(" | ")[0].lstrip("| "): line for line in by_task.splitlines() if line.startswith("| ")}
    header = lines["method"].strip("| ").split(" | ")
    assert header[-1] == "track iou (n=1)" and "remove psnr_gt (n=1)" in header
    painted = lines["genprop (painted change)"].strip("| ").split(" | ")
    mpd = lines["genprop (MPD mask)"].strip("| ").split(" | ")
    assert painted[-1] == f"{track['genprop']:.3f}" and mpd[-1] == f"{track['genprop_mpd']:.3f}"
    assert painted[-1] != mpd[-1] and set(mpd[1:-1]) == {"—"}  # the MPD's row: its IoU alone
    assert lines["genprop (painted change)"].count("n/a") == 3  # no replace/insert/background prediction: unknown
    assert "| genprop | " in overall and "| method | psnr_m | psnr_gt | ssim_gt |" in overall  # defined everywhere
    assert "iou" not in overall and "genprop (MPD mask)" not in overall
    assert " 0.000 " not in lines["genprop (painted change)"]


def test_report_fits_1400_px_and_upscales_small_clips(world, evaluated):
    page = (evaluated / "report.html").read_text()
    imgs = re.findall(r"<img [^>]*>", page)
    assert imgs
    for tag in imgs:
        src = re.search(r"src='([^']+)'", tag).group(1)
        width, height = (int(re.search(rf"{k}='(\d+)'", tag).group(1)) for k in ("width", "height"))
        assert width <= 1400, tag
        if "class='chart'" in tag or "class='strip'" in tag:  # shown at the file's own size
            assert Image.open(evaluated / src).size == (width, height), tag
    assert "image-rendering:pixelated" in page
    # 48x64 frames: 3x nearest-neighbour (short side 144 >= 128), in the poster, the video and the strip
    gt = np.load(_case_dir(world, "track") / "ground_truth.npz")
    cid = _case_dir(world, "track").name
    poster = np.asarray(Image.open(evaluated / "report_files" / cid / "original.png").convert("RGB"))
    mid = gt["original"][len(gt["original"]) // 2]
    assert poster.shape == (144, 192, 3) and np.array_equal(poster, mid.repeat(3, 0).repeat(3, 1))
    assert video.probe(str(evaluated / "report_files" / cid / "original.mp4")).width == 192
    strip = Image.open(evaluated / "report_files" / cid / "strip.png")
    assert strip.size[0] <= 1400 and strip.size[1] >= 3 * 144
    assert f"<video src='report_files/{cid}/original.mp4' poster='report_files/{cid}/original.png' " \
           f"width='192' height='144'" in page


def test_frame_strip_upscales_and_keeps_whole_labels():
    from PIL import ImageDraw

    from genprop.report.html import _font, _wrap, frame_strip

    clip = np.zeros((9, 32, 32, 3), np.uint8)
    clip[:, 10:20, 10:20] = 255
    long = "genprop (painted change) with_a_very_long_method_name_beyond_any_cell"
    strip = Image.open(__import__("io").BytesIO(frame_strip([("original", clip), (long, clip), ("x", clip[0])],
                                                             [0, 4, 8])))
    arr = np.asarray(strip.convert("RGB"))
    assert strip.size[0] == 3 * 128 + 2 * 4  # 32x32 frames at 4x, side by side
    bottom = arr[-128:, :128]  # the last row's first frame: the clip's frame, 4x nearest-neighbour
    assert np.array_equal(bottom, clip[8].repeat(4, 0).repeat(4, 1))
    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), _font()
    lines = _wrap(draw, long, font, 124)
    assert len(lines) > 1 and all(draw.textlength(x, font=font) <= 124 for x in lines)
    assert "".join(lines).replace(" ", "") == long.replace(" ", "")  # every character kept


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
