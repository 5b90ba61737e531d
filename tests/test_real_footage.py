"""Propagation on real-size footage: a 1280x720 H.264 clip at 30000/1001 fps with audio, camera motion, sensor
noise and a planted edit whose true region is known per frame (``genprop.datasets.footage``).

Checks what a user gets: the composite keeps the input's own pixels outside the edit (exactly with the
RGB-lossless output, within 0.5 dB of the clip's own encode round trip at the default CRF), the written region
covers the edit, the file keeps the input's geometry, timestamps, colour tags and audio, the null edit gives the
input back, and long runs show progress. No timing is checked.
"""

from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import torch

from genprop.datasets.footage import Footage, FootageConfig
from genprop.propagation import PropagationConfig, Propagator, load_model
from genprop.propagation.long_video import window_spans
from genprop.video_stream import VideoReader, probe_stream
from genprop.video_writer import VideoWriter
from tests.test_demo import REPO

SHIPPED = f"{REPO}/models/procedural-genprop/model"
BAND = 8  # px: the seam's band around the written region that the bound leaves out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The 100-frame clip, its footage (true edit) and its own CRF-12 encode round trip."""
    d = tmp_path_factory.mktemp("footage")
    footage = Footage(FootageConfig(frames=100))
    files = footage.write(str(d / "clip"))
    with VideoReader(files.video) as r:  # the clip's own round trip through the propagation's writer
        info = r.info
        with VideoWriter(str(d / "roundtrip.mp4"), info.fps, info.width, info.height, like=info) as w:
            for f in r:
                w.write(f.image, f.pts)
    return {"footage": footage, "files": files, "roundtrip": str(d / "roundtrip.mp4"), "dir": d}


def _frames(url):
    with VideoReader(url) as r:
        yield from (f.image for f in r)


def _grey(url):
    return (f[..., 0] >= 128 for f in _frames(url))


def compare(clip, out_url, mask_url, true_regions=None):
    """Per-frame region coverage and area against the truth, and the output outside the region + band.

    Returns:
        {"coverage": [..], "area_ratio": [..], "region_frac": [..], "max_abs_outside": int,
         "psnr_outside": dB of the output against the decoded input outside region + band,
         "psnr_roundtrip": the clip's own round trip on the same pixels}.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * BAND + 1, 2 * BAND + 1))
    cov, ratio, frac, worst = [], [], [], 0
    se = {"out": 0.0, "rt": 0.0}
    count = 0
    regions = true_regions if true_regions is not None else iter(lambda: None, 0)
    for src, out, rt, region, truth in zip(_frames(clip["files"].video), _frames(out_url), _frames(clip["roundtrip"]),
                                           _grey(mask_url), regions):
        if truth is not None:
            cov.append(float((region & truth).sum() / truth.sum()))
            ratio.append(float(region.sum() / truth.sum()))
        frac.append(float(region.mean()))
        keep = cv2.dilate(region.astype(np.uint8), kernel) == 0
        d_out = out[keep].astype(np.int32) - src[keep]
        d_rt = rt[keep].astype(np.int32) - src[keep]
        worst = max(worst, int(np.abs(d_out).max(initial=0)))
        se["out"] += float((d_out ** 2).sum())
        se["rt"] += float((d_rt ** 2).sum())
        count += d_out.size
    psnr = {k: 10 * math.log10(255 ** 2 / max(v / count, 1e-12)) for k, v in se.items()}
    return {"coverage": cov, "area_ratio": ratio, "region_frac": frac, "max_abs_outside": worst,
            "psnr_outside": psnr["out"], "psnr_roundtrip": psnr["rt"], "frames": len(frac)}


class TrueEditPropagator(Propagator):
    """A stand-in generator: each window returns the true edited video at the working size (the composite alone)."""

    def __init__(self, model, config, footage: Footage):
        super().__init__(model, config)
        self.footage = footage
        cfg = footage.config
        self.spans = window_spans(cfg.frames, self.window, self.config.overlap)
        self.fmap = self.frame_map(cfg.height, cfg.width)

    def sample_window(self, source, first_frame, prompt, task, seed):
        s, e = self.spans[seed - self.config.seed]
        work = self.fmap.to_working([self.footage.edited(t) for t in range(s, e)])
        assert work.shape == source.shape
        return work, torch.zeros(e - s, 2, 2)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["rgb-lossless", "crf"])
def test_composite_keeps_the_input_outside_the_true_edit(clip, tmp_path, mode):
    model = load_model(SHIPPED)
    # the stand-in generator has no MPD mask (zeros): the region is the composite's diff of its frames
    p = TrueEditPropagator(model, PropagationConfig(output_mode=mode, composite="diff"), clip["footage"])
    out, mask = str(tmp_path / "out.mp4"), str(tmp_path / "mask.mp4")
    stats = p.run_files(clip["files"].video, clip["files"].edited_first_frame, out, mask_out=mask)
    assert stats["frames"] == 100 and stats["region_source"] == "diff" and stats["work_size"] == [24, 40]
    truth = (clip["footage"].true_region(t) for t in range(100))
    c = compare(clip, out, mask, truth)
    assert c["frames"] == 100
    assert min(c["coverage"]) >= 0.9, c["coverage"]
    assert max(c["area_ratio"]) <= 3.0, c["area_ratio"]
    if mode == "rgb-lossless":
        assert c["max_abs_outside"] == 0  # the decoded input's own pixels, exactly
    else:
        assert c["psnr_outside"] >= c["psnr_roundtrip"] - 0.5, c


def _cli(args, capsys):
    from jobs.cli import main

    rc = main(["propagate", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_shipped_model_with_default_flags_on_720p(clip, tmp_path, capsys):
    files = clip["files"]
    src = probe_stream(files.video)
    for name, edited in (("edit", files.edited_first_frame), ("null", files.identity_first_frame)):
        out, mask = str(tmp_path / f"{name}.mp4"), str(tmp_path / f"{name}_mask.mp4")
        rc, stdout, err = _cli(["--model", SHIPPED, "--video", files.video, "--edited-first-frame", edited,
                                "--out", out, "--mask-out", mask], capsys)
        assert rc == 0, err
        report = json.loads(stdout)
        assert report["window"] == 9 and report["work_size"] == [24, 40]  # the trained clip's, aspect kept
        assert report["peak_memory"]["kind"] == "peak_rss"
        n = len(window_spans(100, 9, 2))
        assert f"original.mp4: window {n}/{n}, 100/100 frames" in err  # progress, plain lines
        got = probe_stream(out)
        for field in ("num_frames", "height", "width", "fps", "time_base", "colorspace", "color_primaries",
                      "color_trc", "color_range", "rotation", "has_audio"):
            assert getattr(got, field) == getattr(src, field), field
        with VideoReader(out) as a, VideoReader(files.video) as b:
            assert [f.pts for f in a] == [f.pts for f in b]  # the input's timestamps
        c = compare(clip, out, mask)
        assert c["psnr_outside"] >= c["psnr_roundtrip"] - 0.5, c
        if name == "null":
            assert max(c["region_frac"]) < 0.01, c["region_frac"]
        else:
            assert 0.03 < c["region_frac"][0] < 0.3  # frame 1's region: the recoloured object


@pytest.mark.timeout(120)
def test_a_window_over_the_capacity_is_one_line_and_progress_names_windows(clip, tmp_path, capsys):
    files = clip["files"]
    rc, _, err = _cli(["--model", SHIPPED, "--video", files.video, "--edited-first-frame",
                       files.edited_first_frame, "--out", str(tmp_path / "x.mp4"), "--window", "81"], capsys)
    assert rc == 2 and err.strip().count("\n") == 0
    assert err.startswith("genprop propagate: window 81 is over the model's limit of 64 frames")
    assert not (tmp_path / "x.mp4").exists()


def test_progress_lines_when_stderr_is_not_a_terminal():
    import io

    from genprop.propagation.progress import Progress

    now = [0.0]
    buf = io.StringIO()
    p = Progress("clip.mp4", 100, 15, stream=buf, interval_s=5, clock=lambda: now[0])
    for w in range(1, 16):
        now[0] += 1.0
        p.update(w, min(100, 7 * w))
    p.update(15, 100, final=True)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("clip.mp4: window 1/15, 7/100 frames, 7.0 frames/s")
    assert len(lines) == 4 and "ETA" in lines[1]  # at most one line per 5 s, and the last one
    assert lines[-1].startswith("clip.mp4: window 15/15, 100/100 frames")
    quiet = io.StringIO()
    Progress("x", 10, 2, stream=quiet, quiet=True).update(2, 10, final=True)
    assert quiet.getvalue() == ""


def test_config_rejects_a_bad_composite_or_output_mode():
    with pytest.raises(ValueError, match="composite must be one of"):
        PropagationConfig(composite="blend")
    with pytest.raises(ValueError, match="output_mode must be one of"):
        PropagationConfig(output_mode="h265")
    assert dataclasses.replace(PropagationConfig(), composite="none").composite == "none"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_batch_job_on_720p_clips_with_a_bad_row(tmp_path, ray_local, capsys):
    from jobs.propagate import main

    files = Footage(FootageConfig(frames=30, seed=1)).write(str(tmp_path / "clip"))
    cut = tmp_path / "clip" / "cut.mp4"  # a truncated copy: decodes some frames, then fails
    data = open(files.video, "rb").read()
    cut.write_bytes(data[: len(data) // 2])
    lines = ["id,video,edited_first_frame,prompt,task",
             "edit,clip/original.mp4,clip/edited_first_frame.png,,auto",
             "null,clip/original.mp4,clip/identity_first_frame.png,,auto",
             "cut,clip/cut.mp4,clip/edited_first_frame.png,,auto"]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["--config", "propagate-tiny.yaml", "--manifest", str(tmp_path / "manifest.csv"), "--output",
                 str(out), "--model", SHIPPED]) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "_summary.json").read_text())
    assert (summary["rows"], summary["done"], summary["error"]) == (3, 2, 1)
    (bad,) = summary["errors"]
    assert bad["id"] == "cut" and "cut.mp4" in bad["reason"] and "\n" not in bad["reason"]
    assert not (out / "cut.mp4").exists()
    assert "propagate: 3/3 rows" in err and "ETA" in err and "cut: error:" in err  # rows done / total, outcomes
    src = probe_stream(files.video)
    rows = {r["id"]: r for r in summary["results"]}
    for rid in ("edit", "null"):
        got = probe_stream(str(out / f"{rid}.mp4"))
        assert (got.num_frames, got.height, got.width, got.fps, got.has_audio, got.colorspace) == (
            src.num_frames, src.height, src.width, src.fps, True, src.colorspace)
        assert rows[rid]["peak_memory_kind"] == "peak_rss" and rows[rid]["peak_memory_bytes"] > 0
    null_region = np.stack(list(_grey(str(out / "null_mask.mp4"))))
    assert null_region.mean() < 0.01
    assert np.stack(list(_grey(str(out / "edit_mask.mp4"))))[0].mean() > 0.03


def test_progress_bar_on_a_terminal():
    import io

    from genprop.propagation.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    now = [0.0]
    buf = Tty()
    p = Progress("clip.mp4", 20, 3, stream=buf, clock=lambda: now[0])
    for w, f in ((1, 7), (2, 14), (3, 20)):
        now[0] += 1.0
        p.update(w, f, final=w == 3)
    text = buf.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1  # one line, redrawn
    assert "clip.mp4 [" in text and "window 3/3, 20/20 frames" in text and "100%" in text


def test_rows_declare_memory_by_resolution_class():
    from pipelines.propagate import PIXEL_CLASSES, pixel_class, row_memory_bytes

    assert pixel_class(540, 960) == 960 * 540 and pixel_class(720, 1280) == 1280 * 720
    assert pixel_class(1081, 1920) == 2560 * 1440 and pixel_class(4000, 8000) == 4000 * 8000
    assert PIXEL_CLASSES == tuple(sorted(PIXEL_CLASSES))
    small, hd, uhd = (row_memory_bytes(h, w, 9) for h, w in ((540, 960), (720, 1280), (2160, 3840)))
    assert small < hd < uhd and uhd > 2 * hd  # a 4K row is not scheduled like a 540p one
    assert row_memory_bytes(720, 1280, 81) > row_memory_bytes(720, 1280, 9)
