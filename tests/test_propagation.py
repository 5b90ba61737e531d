"""Single-video propagation: the sampler path, determinism and CFG, faithful output, long videos, tracking, CLI."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from genprop import masks, video, video_decode
from genprop.errors import DataError
from genprop.models import GenPropConfig, GenPropModel
from genprop.propagation import PropagationConfig, Propagator
from genprop.propagation import memory
from genprop.propagation.tracking import (centre_at_half, mask_levels, painted_colour, read_mask_video, track_mask,
                                         write_mask_video)
from genprop.sampling import propagate


def _video(t, h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, h, w, 3))
    drift = rng.integers(-20, 20, (t, 1, 1, 3))
    return np.clip(base + drift, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def wan():
    return GenPropModel(GenPropConfig.tiny("wan"))


def test_one_window_is_the_sampler_and_seeded(wan):
    p = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), composite="none"))
    v = _video(9, 32, 32)
    edited = v[0].copy()
    edited[8:20, 8:20] = (255, 0, 0)
    a = p.run(v, edited, "a red square", task=1, seed=3)
    b = p.run(v, edited, "a red square", task=1, seed=3)
    c = p.run(v, edited, "a red square", task=1, seed=4)
    fm = p.frame_map(32, 32)
    ref = propagate(wan, fm.to_working(v), fm.image_to_working(edited), "a red square", task_id=1, seed=3,
                    num_steps=2)
    assert np.array_equal(a.frames, fm.from_working(ref))  # exactly the model's sampler
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.frames, c.frames)
    assert a.mask.shape == (9, 32, 32) and 0 <= a.mask.min() and a.mask.max() <= 1
    assert a.peak_memory["kind"] == "peak_rss" and a.peak_memory["bytes"] > 10 * 2**20


def test_cfg_default_scale_and_override():
    wan = GenPropModel(GenPropConfig.tiny("wan", encoders=True))  # a text encoder: cond and uncond differ
    bb = wan.backbone
    calls, scales = [], []
    orig_prepare, orig_scale = bb.prepare, bb.guidance_scale
    bb.prepare = lambda x, t, cond: (calls.append(x.shape[0]), orig_prepare(x, t, cond))[1]
    bb.guidance_scale = lambda n, s=None: (scales.append(s), orig_scale(n, s))[1]
    try:
        v = _video(5, 32, 32)
        default = Propagator(wan, PropagationConfig.tiny()).run(v, v[0], "a cat")
        assert set(calls) == {2} and scales == [None]  # backbone default (Wan 5.0): [uncond, cond] batched
        calls.clear()
        no_cfg = Propagator(wan, PropagationConfig(working_area=1024, window=9, num_steps=2, guidance=1.0)).run(v, v[0], "a cat")
        assert set(calls) == {1}
        strong = Propagator(wan, PropagationConfig(working_area=1024, window=9, num_steps=2, guidance=20.0)).run(v, v[0], "a cat")
        assert scales[-1] == 20.0
        assert not np.array_equal(default.raw, no_cfg.raw) and not np.array_equal(default.raw, strong.raw)
    finally:
        bb.prepare, bb.guidance_scale = orig_prepare, orig_scale


@pytest.mark.parametrize("kind,kwargs", [("wan", {}), ("wan", dict(latent_map="vae", encoders=True)), ("svd", {})])
def test_odd_size_and_long_video_keep_frames_fps_size(tmp_path, kind, kwargs):
    model = GenPropModel(GenPropConfig.tiny(kind, **kwargs))
    src = _video(13, 33, 47, seed=1)
    fps = Fraction(30000, 1001)
    video.encode(src, str(tmp_path / "in.mp4"), fps)
    edited = video_decode.decode(str(tmp_path / "in.mp4"))[0].copy()
    edited[5:15, 5:15] = (0, 255, 0)
    masks.write_image(str(tmp_path / "edit.png"), edited)
    p = Propagator(model, PropagationConfig(working_area=1024, window=5, overlap=2, num_steps=2,
                                            decode_chunk_size=2))
    outs = {n: str(tmp_path / f"{n}.mp4") for n in ("out", "mask", "track", "raw", "mpd")}
    stats = p.run_files(str(tmp_path / "in.mp4"), str(tmp_path / "edit.png"), outs["out"], prompt="x", task=3,
                        mask_out=outs["mask"], track_out=outs["track"], raw_out=outs["raw"], mpd_out=outs["mpd"])
    assert stats["frames"] == 13 and stats["windows"] == 4 and stats["region_source"] == "diff"
    assert all(w["psnr_m"] is None or w["psnr_m"] > 0 for w in stats["drift"]["windows"])
    for url in outs.values():
        info = video.probe(url)
        assert (info.num_frames, info.height, info.width, info.fps) == (13, 33, 47, fps)
    # the same frames as the in-memory run (same windows, same seeds), through the encoder
    from genprop.video_stream import VideoReader

    with VideoReader(str(tmp_path / "in.mp4")) as r:
        mem = p.run(np.stack([f.image for f in r]), edited, "x", task=3)
    assert np.array_equal(read_mask_video(outs["mask"]), mem.region)
    assert np.array_equal(read_mask_video(outs["track"]), mem.track_mask)
    assert mem.frames.shape == (13, 33, 47, 3) and mem.mask.shape == (13, 33, 47)


def test_edited_frame_size_mismatch_is_a_clear_error(tmp_path, wan):
    video.encode(_video(5, 32, 32), str(tmp_path / "in.mp4"), 12)
    masks.write_image(str(tmp_path / "edit.png"), np.zeros((30, 32, 3), np.uint8))
    with pytest.raises(DataError, match=r"edit.png: size mismatch: the edited first frame is 32x30 but the video"):
        Propagator(wan, PropagationConfig.tiny()).run_files(str(tmp_path / "in.mp4"), str(tmp_path / "edit.png"),
                                                            str(tmp_path / "out.mp4"))
    assert not (tmp_path / "out.mp4").exists()


def test_window_over_the_models_capacity_is_one_line(wan):
    from genprop.propagation import ModelLimitError

    # the tiny Wan's rotary table holds 32 positions per axis: 32 frames with the pixel-unshuffle map
    with pytest.raises(ModelLimitError, match=r"^window 33 is over the model's limit of 32 frames: its positional "
                                              r"table holds 32; pass --window 32 or less$"):
        Propagator(wan, PropagationConfig(window=33))
    with pytest.raises(ModelLimitError, match="working size .* is over the model's limit of 256x256"):
        Propagator(wan, PropagationConfig(working_area=512 * 512)).frame_map(720, 1280)
    assert Propagator(wan).window == 32  # no clip record: the backbone's 81, within its capacity


def test_window_and_working_size_come_from_the_checkpoint(tmp_path, wan):
    from genprop.models.trained_clip import trained_clip
    from genprop.propagation.propagate import load_model

    wan.save_pretrained(str(tmp_path / "ckpt"), trained_clip=trained_clip(wan.backbone, 7, 16, 48, "12"))
    model = load_model(str(tmp_path / "ckpt"))
    assert model.trained_clip.frames == 7 and model.trained_clip.capacity.max_frames == 32
    p = Propagator(model)
    assert p.window == 7 and p.frame_map(720, 1280).work_size == (24, 40)  # 16 * 48 pixels, 16:9 kept
    assert Propagator(model, PropagationConfig(window=12)).window == 12


def test_rgb_lossless_output_writes_the_frames_exactly(tmp_path, wan):
    frames = _video(6, 32, 32, seed=3)
    from genprop.video_stream import VideoReader

    video.encode(frames, str(tmp_path / "in.mp4"), 12)
    with VideoReader(str(tmp_path / "in.mp4")) as r:
        decoded = np.stack([f.image for f in r])  # what the propagator reads
    edited = decoded[0].copy()
    edited[4:12, 4:12] = (255, 0, 0)
    masks.write_image(str(tmp_path / "edit.png"), edited)
    cfg = dataclasses.replace(PropagationConfig.tiny(), window=5, output_mode="rgb-lossless")
    p = Propagator(wan, cfg)
    p.run_files(str(tmp_path / "in.mp4"), str(tmp_path / "edit.png"), str(tmp_path / "out.mp4"))
    mem = p.run(decoded, edited)
    with VideoReader(str(tmp_path / "out.mp4")) as r:
        written = np.stack([f.image for f in r])
    assert np.array_equal(written, mem.frames)


def test_tracking_reads_the_painted_change_and_mask_videos(tmp_path):
    original = np.full((4, 20, 30, 3), 80, np.uint8)
    gt = np.zeros((4, 20, 30), bool)
    for t in range(4):  # an object moving right, with a reflection below it
        original[t, 5:10, 3 + 4 * t:9 + 4 * t] = (30, 200, 30)
        original[t, 12:15, 3 + 4 * t:9 + 4 * t] = (55, 140, 55)
        gt[t, 5:10, 3 + 4 * t:9 + 4 * t] = gt[t, 12:15, 3 + 4 * t:9 + 4 * t] = True
    frames = original.copy()
    for t in range(4):  # the propagated paint: the object solid, its reflection tinted half-way
        frames[t, 5:10, 3 + 4 * t:9 + 4 * t] = (250, 20, 200)
        frames[t, 12:15, 3 + 4 * t:9 + 4 * t] = (165, 80, 128)
    noise = np.random.default_rng(0).integers(-20, 21, frames.shape)
    frames = np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)  # reconstruction error: not a change
    frames[:, 0, 0] = (0, 0, 0)  # a change away from the paint: not tracked
    assert painted_colour(original[0], original[0]) is None
    assert painted_colour(original[0], frames[0]).tolist() == pytest.approx([250, 20, 200], abs=20)
    tracked = track_mask(frames, original, frames[0])
    assert np.array_equal(tracked, gt)
    assert not track_mask(original, original, original[0]).any()
    with pytest.raises(ValueError, match="one shape"):
        track_mask(frames[:2], original, frames[0])
    write_mask_video(tracked, str(tmp_path / "m.mp4"), "24000/1001")
    assert np.array_equal(read_mask_video(str(tmp_path / "m.mp4")), gt)
    soft = np.linspace(0, 1, 4 * 20 * 30, dtype=np.float32).reshape(4, 20, 30)
    write_mask_video(soft, str(tmp_path / "s.mp4"), 12)
    back = video_decode.decode(str(tmp_path / "s.mp4")).astype(np.float32).mean(-1) / 255
    assert np.abs(back - soft).max() < 3 / 255  # soft MPD values survive (lossless, up to YUV rounding)


def test_memory_controls_bf16_tiling_offload():
    model = GenPropModel(GenPropConfig.tiny("wan", latent_map="vae", encoders=True))
    v = _video(5, 32, 32)
    base = Propagator(model, PropagationConfig(working_area=1024, window=5, num_steps=2)).run(v, v[0])
    tiled = Propagator(model, PropagationConfig(working_area=1024, window=5, num_steps=2, vae_tiling=True))
    assert model.backbone.latent_map.vae.use_tiling
    model.backbone.latent_map.vae.use_tiling = False
    bf16 = Propagator(model, PropagationConfig(working_area=1024, window=5, num_steps=2, dtype="bfloat16")).run(v, v[0])
    assert bf16.raw.shape == base.raw.shape and not np.array_equal(bf16.raw, base.raw)
    off = Propagator(model, PropagationConfig(working_area=1024, window=5, num_steps=2, cpu_offload=True)).run(v, v[0])
    assert np.array_equal(off.raw, base.raw)  # on the CPU offload is a no-op: same numbers
    groups = memory.offload_groups(model)
    assert groups["denoiser"][0] is model.backbone.transformer and groups["latent_map"] == [model.backbone.latent_map]
    assert tiled.window == 5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_offload_on_cuda_keeps_components_on_cpu_and_reports_cuda_peak():
    model = GenPropModel(GenPropConfig.tiny("wan", latent_map="vae", encoders=True))
    v = _video(5, 32, 32)
    p = Propagator(model, PropagationConfig(working_area=1024, window=5, num_steps=2, cpu_offload=True, device="cuda"))
    assert next(model.backbone.transformer.parameters()).device.type == "cpu"
    r = p.run(v, v[0])
    assert next(model.sce.parameters()).device.type == "cpu"
    assert r.peak_memory["kind"] == "cuda_max_allocated" and r.peak_memory["bytes"] > 0


def _cli(tmp_path, frames, fps, model_dir, *extra):
    from jobs.cli import main

    video.encode(frames, str(tmp_path / "in.mp4"), fps)
    edited = video_decode.decode(str(tmp_path / "in.mp4"))[0].copy()
    edited[: edited.shape[0] // 3, : edited.shape[1] // 3] = (255, 255, 0)
    masks.write_image(str(tmp_path / "edit.png"), edited)
    return main(["propagate", "--model", model_dir, "--video", str(tmp_path / "in.mp4"),
                 "--edited-first-frame", str(tmp_path / "edit.png"), "--prompt", "a yellow box", "--task", "insert",
                 "--steps", "2", "--seed", "1", "--out", str(tmp_path / "out.mp4"),
                 "--mask-out", str(tmp_path / "out_mask.mp4"), *extra])


def test_cli_propagate(tmp_path, wan, capsys):
    wan.save_pretrained(str(tmp_path / "ckpt"))
    fps = Fraction(30000, 1001)
    assert _cli(tmp_path, _video(11, 33, 47), fps, str(tmp_path / "ckpt"), "--window", "5") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 11 and report["fps"] == "30000/1001" and len(report["drift"]["windows"]) == 3
    for name in ("out.mp4", "out_mask.mp4"):
        info = video.probe(str(tmp_path / name))
        assert (info.num_frames, info.height, info.width, info.fps) == (11, 33, 47, fps)
    masks.write_image(str(tmp_path / "edit.png"), np.zeros((8, 8, 3), np.uint8))
    from jobs.cli import main

    rc = main(["propagate", "--model", str(tmp_path / "ckpt"), "--video", str(tmp_path / "in.mp4"),
               "--edited-first-frame", str(tmp_path / "edit.png"), "--out", str(tmp_path / "x.mp4")])
    assert rc == 2 and "size mismatch" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_propagate_real_h264_720p(tmp_path, wan, capsys):
    wan.save_pretrained(str(tmp_path / "ckpt"))
    yy, xx = np.mgrid[0:720, 0:1280]
    frames = np.stack([np.stack([(xx + 8 * t) % 256, (yy + 3 * t) % 256, (xx // 5 + yy // 7) % 256], -1)
                       for t in range(20)]).astype(np.uint8)
    fps = Fraction(30000, 1001)
    assert _cli(tmp_path, frames, fps, str(tmp_path / "ckpt")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["work_size"] == [24, 40]  # 1280x720 -> the tiny model's ~32x32 area at 16:9
    info = video.probe(str(tmp_path / "out.mp4"))
    assert (info.num_frames, info.height, info.width, info.fps) == (20, 720, 1280, fps)


@pytest.mark.parametrize("kind,kwargs", [("wan", dict(encoders=True)), ("svd", {})])
def test_cfg_runs_the_sce_once_and_shares_it(kind, kwargs):
    """Under CFG the SCE runs on the conditional half only; that half's prediction is unchanged, the
    unconditional half gets the conditional SCE features (so it differs from a per-branch SCE)."""
    from genprop.sampling import _cat

    model = GenPropModel(GenPropConfig.tiny(kind, **kwargs)).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in model.trainable_parameters():  # non-zero injections, as after training
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    bb = model.backbone
    video_in = torch.from_numpy(_video(9, 32, 32)).permute(0, 3, 1, 2)[None].float() / 127.5 - 1
    sce_latents = bb.encode_video(video_in)
    cond = bb.encode_condition(video_in[:, 0], "a red square", generator=torch.Generator().manual_seed(1),
                               num_frames=9)
    cond_in = _cat(bb.null_condition(cond), cond)
    x = torch.randn((2,) + tuple(sce_latents.shape[1:]), generator=g)
    t = bb.make_scheduler()
    t.set_timesteps(4)
    ts = t.timesteps[1].expand(2)
    sce_rows = []
    hook = model.sce.register_forward_pre_hook(lambda m, args: sce_rows.append(args[1].shape[0]))
    try:
        with torch.no_grad():
            shared = model(x, ts, cond_in, torch.cat([sce_latents] * 2), torch.tensor([1, 1]), num_frames=9,
                           share_sce_across_cfg=True).prediction
            separate = model(x, ts, cond_in, torch.cat([sce_latents] * 2), torch.tensor([1, 1]), num_frames=9
                             ).prediction
    finally:
        hook.remove()
    assert sce_rows[0] * 2 == sce_rows[1]  # half the rows through the SCE
    torch.testing.assert_close(shared[1:], separate[1:], rtol=1e-4, atol=1e-5)
    assert (shared[:1] - separate[:1]).abs().max() > 1e-4


def test_run_files_keeps_rotation_vfr_timestamps_audio_and_tags(tmp_path, wan):
    from tests.test_video_stream import VFR_PTS, gradients, make_clip
    from genprop.video_stream import VideoReader, probe_stream

    rotated = make_clip(tmp_path / "rot.mp4", gradients(12, 90, 160), rotation=90, audio=True)
    vfr = make_clip(tmp_path / "vfr.mp4", gradients(len(VFR_PTS), 48, 64), fps=Fraction(24), pts=VFR_PTS,
                    time_base=Fraction(1, 90000))
    p = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), window=5))
    for src in (rotated, vfr):
        with VideoReader(src) as r:
            first = next(iter(r)).image
        masks.write_image(str(tmp_path / "edit.png"), first)
        out = str(tmp_path / "out.mp4")
        p.run_files(src, str(tmp_path / "edit.png"), out)
        a, b = probe_stream(src), probe_stream(out)
        for field in ("num_frames", "height", "width", "fps", "time_base", "rotation", "has_audio", "colorspace",
                      "color_primaries", "color_trc", "color_range"):
            assert getattr(a, field) == getattr(b, field), (src, field)
        with VideoReader(src) as x, VideoReader(out) as y:
            assert [f.pts for f in x] == [f.pts for f in y]


def test_auto_composite_takes_the_mpd_only_where_validation_shows_it_better(wan):
    from genprop.models.trained_clip import trained_clip

    clip = trained_clip(wan.backbone, 9, 32, 32)
    for iou, want in (({"mpd": 0.6, "diff": 0.4}, "mpd"), ({"mpd": 0.0, "diff": 0.41}, "diff"), (None, "diff")):
        wan.trained_clip = dataclasses.replace(clip, region_iou=iou)
        assert Propagator(wan).region_source() == want
        assert Propagator(wan, PropagationConfig(composite="none")).region_source() == "none"
    wan.trained_clip = None


def test_the_mpd_region_is_cut_at_the_checkpoints_calibrated_threshold(tmp_path, wan):
    from genprop.models.trained_clip import trained_clip

    v = _video(5, 32, 32)
    edited = v[0].copy()
    edited[8:16, 8:16] = (250, 20, 20)
    try:
        for calibrated, configured, want in ((0.3, None, 0.3), (None, None, 0.5), (0.3, 0.7, 0.7)):
            wan.trained_clip = dataclasses.replace(trained_clip(wan.backbone, 5, 32, 32), mpd_threshold=calibrated)
            prop = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), composite="mpd",
                                                       mask_threshold=configured))
            assert prop.mask_threshold() == want
            r = prop.run(v, edited)
            assert np.array_equal(r.region[1:], r.mask[1:] >= want)  # later frames: the MPD's mask at the cut
        # the MPD's mask video, cut at mid-grey, is the region at the checkpoint's cut
        video.encode(v, str(tmp_path / "in.mp4"), 12)
        masks.write_image(str(tmp_path / "edit.png"), edited)
        wan.trained_clip = dataclasses.replace(trained_clip(wan.backbone, 5, 32, 32), mpd_threshold=0.3)
        prop = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), composite="mpd"))
        prop.run_files(str(tmp_path / "in.mp4"), str(tmp_path / "edit.png"), str(tmp_path / "out.mp4"),
                       mpd_out=str(tmp_path / "mpd.mp4"), mask_out=str(tmp_path / "mask.mp4"))
        region = read_mask_video(str(tmp_path / "mask.mp4"))
        assert np.array_equal(read_mask_video(str(tmp_path / "mpd.mp4"))[1:], region[1:])
    finally:
        wan.trained_clip = None
    with pytest.raises(ValueError, match="MPD threshold 1.5"):
        dataclasses.replace(trained_clip(wan.backbone, 5, 32, 32), mpd_threshold=1.5)


def test_a_checkpoint_calibrated_per_task_cuts_each_tasks_mpd_region_at_its_own_value(wan):
    from genprop.models.trained_clip import trained_clip
    from genprop.tasks import Task

    v = _video(5, 32, 32)
    edited = v[0].copy()
    edited[8:16, 8:16] = (250, 20, 20)
    clip = dataclasses.replace(trained_clip(wan.backbone, 5, 32, 32), mpd_threshold=0.4,
                               mpd_task_thresholds={"track": 0.2, "remove": 0.8})
    try:
        wan.trained_clip = clip
        prop = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), composite="mpd"))
        for task, want in ((Task.COLOUR_FILL, 0.2), (Task.MASK_FILL, 0.8), (Task.COPY_PASTE, 0.4), (None, 0.4)):
            assert prop.mask_threshold(None if task is None else int(task)) == want, task
        r = prop.run(v, edited, task=int(Task.COLOUR_FILL))
        assert np.array_equal(r.region[1:], r.mask[1:] >= 0.2)
        # a configured cut overrides every task's
        fixed = Propagator(wan, dataclasses.replace(PropagationConfig.tiny(), mask_threshold=0.6))
        assert fixed.mask_threshold(int(Task.COLOUR_FILL)) == 0.6
        # the record survives its json
        assert type(clip).from_dict(json.loads(json.dumps(clip.to_dict()))) == clip
    finally:
        wan.trained_clip = None
    for bad in ({"track": 1.0}, {"paint": 0.5}):
        with pytest.raises(ValueError, match="MPD threshold"):
            dataclasses.replace(clip, mpd_task_thresholds=bad)


def test_a_mask_centred_at_its_threshold_keeps_its_order_and_its_cut_at_mid_grey():
    m = np.random.default_rng(0).random((4, 64, 64), dtype=np.float32)
    m[0, 0, :4] = (0.0, 1.0, 0.3, np.nextafter(np.float32(0.3), np.float32(0)))
    for thr in (0.05, 0.3, 0.5, 0.85):
        c = centre_at_half(m, thr)
        assert np.array_equal(mask_levels(c) / 255.0 >= 0.5, m >= thr)  # what read_mask_video cuts
        order = np.argsort(m.ravel(), kind="stable")
        assert np.all(np.diff(c.ravel()[order]) >= 0) and c.min() >= 0 and c.max() <= 1
        assert c[0, 0, 0] == 0 and c[0, 0, 1] == 1
    with pytest.raises(ValueError, match="threshold 1.0 must lie strictly between 0 and 1"):
        centre_at_half(m, 1.0)


@pytest.mark.parametrize("frames", [1, 2])
def test_one_and_two_frame_videos(wan, frames):
    v = _video(frames, 32, 32)
    r = Propagator(wan, PropagationConfig.tiny()).run(v, v[0])
    assert r.frames.shape == v.shape and np.array_equal(r.frames, v)  # the null edit gives the input back
