"""Tests for genprop.datasets.footage: synthetic camera footage with a planted first-frame edit.

Small clips (96x160, 12 frames) for almost everything; one 1280x720 clip of 10 frames for the native size.
PNGs are read back with PIL, not cv2: once decord is imported in a process, cv2.imread of a PNG fails there
(their zlib builds clash), and an independent reader also checks the files really are RGB.
"""

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from genprop.datasets.footage import AUDIO_FRAME, AUDIO_RATE, Footage, FootageConfig, FootageFiles

SMALL = FootageConfig(height=96, width=160, frames=12, seed=3)


def png(path: str) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img)


@pytest.fixture(scope="module")
def small():
    return Footage(SMALL)


@pytest.fixture(scope="module")
def written(small, tmp_path_factory):
    return small.write(str(tmp_path_factory.mktemp("footage")))


def test_same_seed_same_frames_other_seed_differs(small):
    again = Footage(SMALL)
    for t in (0, 5, SMALL.frames - 1):
        assert np.array_equal(small.original(t), again.original(t))
        assert np.array_equal(small.edited(t), again.edited(t))
        assert np.array_equal(small.true_region(t), again.true_region(t))
    other = Footage(FootageConfig(height=96, width=160, frames=12, seed=4))
    assert not np.array_equal(small.original(0), other.original(0))
    assert not np.array_equal(small.true_region(0), other.true_region(0))


def test_frames_iterates_what_the_getters_give(small):
    seen = 0
    for t, (original, edited, region) in enumerate(small.frames()):
        assert original.shape == edited.shape == (96, 160, 3) and original.dtype == edited.dtype == np.uint8
        assert region.shape == (96, 160) and region.dtype == bool
        assert np.array_equal(original, small.original(t))
        assert np.array_equal(edited, small.edited(t))
        assert np.array_equal(region, small.true_region(t))
        seen += 1
    assert seen == SMALL.frames


def test_getters_hand_out_copies(small):
    small.original(2)[:] = 0
    small.true_region(2)[:] = True
    assert small.original(2).any() and not small.true_region(2).all()


def test_region_inside_the_frame_sized_and_moving(small):
    regions = [small.true_region(t) for t in range(SMALL.frames)]
    for r in regions:
        assert 0.04 <= r.mean() <= 0.15
        # Fully inside: the object never touches the frame's border.
        assert not (r[0].any() or r[-1].any() or r[:, 0].any() or r[:, -1].any())
    centroid = lambda r: np.argwhere(r).mean(axis=0)
    assert not np.array_equal(regions[0], regions[-1])
    assert np.abs(centroid(regions[0]) - centroid(regions[-1])).max() > 1.0


def test_edit_changes_exactly_the_region(small):
    for t in range(SMALL.frames):
        original, edited, region = small.original(t), small.edited(t), small.true_region(t)
        assert np.array_equal(original[~region], edited[~region])
        diff = np.abs(original.astype(np.int16) - edited)[region]
        assert diff.mean() > 40


def test_camera_moves_the_background(small):
    a, b = small.original(0), small.original(SMALL.frames - 1)
    background = ~(small.true_region(0) | small.true_region(SMALL.frames - 1))
    # Far above what the noise alone gives (mean |n1 - n2| ~ 2.8 levels at sigma 2.5).
    assert np.abs(a.astype(np.int16) - b)[background].mean() > 8
    # And the shift measured on the frames is the camera's (the world moves opposite to the camera).
    (x0, y0), (x1, y1) = small.camera_offset(0), small.camera_offset(SMALL.frames - 1)
    assert np.hypot(x1 - x0, y1 - y0) > 1.0
    ga, gb = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in (a, b))
    (sx, sy), _ = cv2.phaseCorrelate(ga, gb)
    assert abs(sx + (x1 - x0)) < 0.75 and abs(sy + (y1 - y0)) < 0.75


def test_written_video(written):
    assert isinstance(written, FootageFiles) and written.config == SMALL
    with av.open(written.video) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (160, 96)
        assert v.average_rate == Fraction(30000, 1001)
        # mp4 stores the track at 1/30000; every frame lasts exactly 1001 ticks of it.
        assert v.time_base == Fraction(1, 30000)
        cc = v.codec_context
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (1, 1, 1, 1)  # bt709, tv
        assert c.streams.audio, "audio=True but no audio stream"
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.rate == AUDIO_RATE and a.channels == 2
        pts, audio_end = [], 0
        for packet in c.demux():
            if packet.pts is None:
                continue
            if packet.stream.type == "video":
                pts.append(packet.pts)
            else:
                audio_end = max(audio_end, packet.pts + packet.duration)
        pts.sort()
    assert len(pts) == SMALL.frames
    assert np.all(np.diff(pts) == 1001)
    video_s = Fraction(SMALL.frames) / SMALL.fps
    assert float(v.duration * v.time_base) == pytest.approx(float(video_s))
    assert abs(Fraction(audio_end, AUDIO_RATE) - video_s) <= Fraction(AUDIO_FRAME, AUDIO_RATE)
    assert abs(Fraction(a.duration) * a.time_base - video_s) <= Fraction(AUDIO_FRAME, AUDIO_RATE)
    with av.open(written.video) as c:
        assert sum(1 for _ in c.decode(video=0)) == SMALL.frames


def test_first_frame_pngs(small, written):
    identity, edited = png(written.identity_first_frame), png(written.edited_first_frame)
    assert identity.shape == edited.shape == (96, 160, 3)
    region = small.true_region(0)
    assert np.array_equal(identity[~region], edited[~region])
    assert np.abs(identity.astype(np.int16) - edited)[region].mean() > 40
    with av.open(written.video) as c:
        decoded = next(c.decode(video=0)).to_ndarray(format="rgb24")   # a plain decode, the file's own tags
    assert np.array_equal(identity, decoded)
    # The encoded frame is close to the rendered one; the edited PNG close to edited(0) in the region.
    assert np.abs(decoded.astype(np.int16) - small.original(0)).mean() < 6
    assert np.abs(edited.astype(np.int16) - small.edited(0))[region].mean() < 6


def test_rewrite_is_byte_identical(small, written, tmp_path):
    again = small.write(str(tmp_path))
    for name in ("video", "edited_first_frame", "identity_first_frame"):
        with open(getattr(written, name), "rb") as f1, open(getattr(again, name), "rb") as f2:
            assert f1.read() == f2.read(), name


def test_no_audio(tmp_path):
    cfg = FootageConfig(height=64, width=96, frames=4, audio=False, fps=Fraction(25))
    files = Footage(cfg).write(str(tmp_path))
    with av.open(files.video) as c:
        assert not c.streams.audio
        assert c.streams.video[0].average_rate == 25


def test_bad_config_and_frame_index():
    with pytest.raises(ValueError):
        Footage(FootageConfig(height=95, width=160, frames=4))
    with pytest.raises(ValueError):
        Footage(FootageConfig(height=96, width=160, frames=0))
    foot = Footage(FootageConfig(height=64, width=96, frames=4))
    with pytest.raises(IndexError):
        foot.original(4)


def test_native_720p(tmp_path):
    cfg = FootageConfig(frames=10, seed=1)
    foot = Footage(cfg)
    original, edited, region = next(iter(foot.frames()))
    assert original.shape == (720, 1280, 3) and 0.04 <= region.mean() <= 0.15
    assert np.array_equal(original[~region], edited[~region])
    # Real detail at full resolution: a 40x24 model's view, upsampled back, is far off.
    img = original.astype(np.float32)
    low = cv2.resize(cv2.resize(img, (40, 24), interpolation=cv2.INTER_AREA), (1280, 720))
    assert np.abs(low - img).mean() > 12
    files = foot.write(str(tmp_path))
    with av.open(files.video) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert sum(1 for _ in c.decode(video=0)) == 10
    assert png(files.identity_first_frame).shape == (720, 1280, 3)
