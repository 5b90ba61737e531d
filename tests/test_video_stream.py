"""genprop.video_stream: streaming decode/encode that keeps tags, rotation, timestamps and audio."""

import filecmp
import os
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from genprop.errors import DecodeTimeoutError, VideoDecodeError
from genprop.video_stream import DecodedFrame, StreamInfo, VideoReader, probe_stream
from genprop.video_writer import VideoWriter

NTSC = Fraction(30000, 1001)
BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709
LIMITED = 1  # AVCOL_RANGE_MPEG


def gradients(t: int, h: int, w: int) -> np.ndarray:
    """(t, h, w, 3) uint8 smooth frames whose blue level is 40 + 5 k in frame k."""
    yy, xx = np.mgrid[:h, :w]
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        out[k, ..., 0] = (xx * 200 // (w - 1) + 3 * k) % 256
        out[k, ..., 1] = yy * 200 // (h - 1)
        out[k, ..., 2] = 40 + 5 * k
    return out


def make_clip(path, frames, *, fps=NTSC, pts=None, time_base=None, tags=True, rotation=0,
              audio=False):
    """Write ``frames`` with PyAV directly (not with the code under test)."""
    t, h, w, _ = frames.shape
    time_base = time_base or 1 / fps
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.time_base = time_base
        if tags:
            cc = s.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = BT709
            cc.color_range = LIMITED
        if rotation:
            s.set_display_rotation(rotation)
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        for k, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            if tags:  # what an HD camera writes: BT.709 limited range
                f = f.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range=LIMITED)
            f.pts, f.time_base = (k if pts is None else pts[k]), time_base
            c.mux(s.encode(f))
        c.mux(s.encode(None))
        if audio:
            n = int(48000 * t / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
            samples = np.stack([tone, tone])
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k:k + 1024]),
                                                format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, k
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return str(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames 160x90 at 30000/1001, BT.709 tags, rotated 90 degrees, AAC stereo audio."""
    frames = gradients(30, 90, 160)
    path = make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, rotation=90, audio=True)
    return path, frames


VFR_PTS = [0, 3003, 7006, 9009, 15015, 18018, 19019, 25025, 28028, 36036, 39039, 40040]


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    """A variable-frame-rate clip: irregular pts in 1/90000 units."""
    frames = gradients(len(VFR_PTS), 48, 64)
    return make_clip(tmp_path_factory.mktemp("vfr") / "vfr.mp4", frames, fps=Fraction(24),
                     pts=VFR_PTS, time_base=Fraction(1, 90000))


def read_all(url, **kw) -> list[DecodedFrame]:
    with VideoReader(url, **kw) as reader:
        return list(reader)


def audio_packets(path):
    with av.open(path) as c:
        a = c.streams.audio[0]
        meta = (a.codec_context.name, a.rate, a.channels)
        return meta, [bytes(p) for p in c.demux(a) if p.size]


def test_probe_stream_reports_the_header(clip, vfr):
    info = probe_stream(clip[0])
    assert info == StreamInfo(num_frames=30, height=90, width=160, fps=NTSC,
                              time_base=Fraction(1, 30000), duration_s=info.duration_s,
                              colorspace=BT709, color_primaries=BT709, color_trc=BT709,
                              color_range=LIMITED, rotation=90, has_audio=True, pix_fmt="yuv420p")
    assert isinstance(info.fps, Fraction) and info.duration_s == pytest.approx(30 * 1001 / 30000)
    v = probe_stream(vfr)
    assert (v.time_base, v.rotation, v.has_audio, v.num_frames) == (Fraction(1, 90000), 0, False, 12)


def test_reader_yields_every_frame_in_order_with_its_pts(clip, vfr):
    path, frames = clip
    with VideoReader(path, queue_frames=2) as reader:
        assert reader.info == probe_stream(path) and reader.local_path == path
        got = list(reader)
    assert [f.index for f in got] == list(range(30))
    assert [f.pts for f in got] == [1001 * k for k in range(30)]
    assert all(f.image.shape == (90, 160, 3) and f.image.dtype == np.uint8 for f in got)
    # Right frame in the right place (the encoder's last frames included), colours decoded with
    # BT.709 limited range: ~1.6 levels off on average; BT.601 or full range would be ~6.5.
    assert np.abs(np.stack([f.image for f in got]).astype(int) - frames).mean() < 2.5
    assert [f.pts for f in read_all(vfr)] == VFR_PTS


def test_rgb_lossless_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 48, 64, 3), dtype=np.uint8)
    url = str(tmp_path / "rgb.mp4")
    with VideoWriter(url, 25, 64, 48, mode="rgb-lossless") as w:
        for img in frames:
            w.write(img)
    np.testing.assert_array_equal(np.stack([f.image for f in read_all(url)]), frames)
    info = probe_stream(url)
    assert (info.colorspace, info.color_range) == (0, 2)  # RGB matrix, full range


def test_lossless_yuv_round_trip_is_within_yuv_rounding(clip, tmp_path):
    src = read_all(clip[0])
    info = probe_stream(clip[0])
    url = str(tmp_path / "yuv.mp4")
    with VideoWriter(url, info.fps, info.width, info.height, mode="lossless", like=info) as w:
        for f in src:
            w.write(f.image, f.pts)
    out = read_all(url)
    assert probe_stream(url).pix_fmt == "yuv444p"
    diff = np.abs(np.stack([f.image for f in out]).astype(int) - np.stack([f.image for f in src]))
    assert diff.max() <= 2 and diff.mean() < 0.5


def test_writer_keeps_tags_rotation_time_base_and_audio(clip, tmp_path):
    path = clip[0]
    info = probe_stream(path)
    urls = [str(tmp_path / f"out{k}.mp4") for k in range(2)]
    with VideoReader(path) as reader:
        with VideoWriter(urls[0], info.fps, info.width, info.height, like=info,
                         audio_from=reader.local_path) as w:
            for f in reader:
                w.write(255 - f.image, f.pts)  # the pixels change, nothing else does
    out = probe_stream(urls[0])
    assert out == StreamInfo(**{**info.__dict__, "duration_s": out.duration_s})
    assert out.duration_s == pytest.approx(info.duration_s)
    assert [f.pts for f in read_all(urls[0])] == [f.pts for f in read_all(path)]
    (meta_in, pk_in), (meta_out, pk_out) = audio_packets(path), audio_packets(urls[0])
    assert meta_out == meta_in == ("aac", 48000, 2)
    assert pk_out == pk_in  # stream copy: the same bytes
    with av.open(urls[0]) as c:  # interleaved as written, not appended at the end
        kinds = "".join(p.stream.type[0] for p in c.demux() if p.size)
    assert kinds.index("a") < kinds.rindex("v")
    # Reruns write the same bytes (mbtree off), audio and all.
    with VideoWriter(urls[1], info.fps, info.width, info.height, like=info, audio_from=path) as w:
        for f in read_all(path):
            w.write(255 - f.image, f.pts)
    assert filecmp.cmp(urls[0], urls[1], shallow=False)


def test_variable_frame_rate_timestamps_and_duration_are_kept(vfr, tmp_path):
    info = probe_stream(vfr)
    url = str(tmp_path / "vfr_out.mp4")
    with VideoWriter(url, info.fps, info.width, info.height, like=info) as w:
        for f in read_all(vfr):
            w.write(f.image, f.pts)
    out = probe_stream(url)
    assert [f.pts for f in read_all(url)] == VFR_PTS and out.time_base == info.time_base
    assert (out.fps, out.duration_s, out.num_frames) == (info.fps, info.duration_s, 12)


def test_without_pts_frame_k_is_at_k_over_fps(clip, tmp_path):
    url = str(tmp_path / "cfr.mp4")
    with VideoWriter(url, NTSC, 33, 17, audio_from=clip[0]) as w:  # odd sides: yuv444p
        for k, img in enumerate(gradients(30, 17, 33)):
            w.write(img)
            if k == 10:  # audio has not run ahead of the video (it would wait in memory)
                pending = w._audio_next
                assert pending is not None and pending.dts * pending.time_base <= 11 / NTSC
    info = probe_stream(url)
    assert (info.fps, info.num_frames, info.pix_fmt, info.rotation) == (NTSC, 30, "yuv444p", 0)
    got = read_all(url)
    assert [f.pts * info.time_base for f in got] == [k / NTSC for k in range(30)]
    assert all(f.image.flags.c_contiguous for f in got)  # 33 * 3 bytes: padded rows, copied
    assert audio_packets(url) == audio_packets(clip[0])


def test_grey_masks_keep_every_level(tmp_path):
    rng = np.random.default_rng(1)
    masks = (rng.random((4, 48, 64)) > 0.5).astype(np.uint8) * 255
    masks[0, 0, :256 // 4] = np.arange(0, 256, 4)[:64]
    url = str(tmp_path / "mask.mp4")
    with VideoWriter(url, 25, 64, 48, grey=True) as w:
        for m in masks[:3]:
            w.write(m)
        w.write(np.repeat(masks[3][..., None], 3, axis=2))  # (H, W, 3) grey is accepted too
    got = np.stack([f.image for f in read_all(url)])
    np.testing.assert_array_equal(got, np.repeat(masks[..., None], 3, axis=3))


def test_writes_are_atomic(tmp_path):
    url = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(str(url), 25, 32, 32) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert not url.exists()
    url.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with VideoWriter(str(url), 25, 32, 32) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    w = VideoWriter(str(url), 25, 32, 32)
    w.write(np.zeros((32, 32, 3), np.uint8))
    w.abort()
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(str(url), 25, 32, 32):
            pass
    assert url.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]  # no temp files left beside it


def test_writer_rejects_bad_frames_and_timestamps(tmp_path):
    url = str(tmp_path / "bad.mp4")
    with VideoWriter(url, 25, 32, 16) as w:
        with pytest.raises(ValueError, match="bad.mp4"):
            w.write(np.zeros((32, 16, 3), np.uint8))  # (W, H): transposed
        with pytest.raises(ValueError):
            w.write(np.zeros((16, 32, 3), np.float32))
        w.write(np.zeros((16, 32, 3), np.uint8), pts=5)
        with pytest.raises(ValueError, match="increase"):
            w.write(np.zeros((16, 32, 3), np.uint8), pts=5)
        with pytest.raises(ValueError, match="every frame"):
            w.write(np.zeros((16, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="mode"):
        VideoWriter(url, 25, 32, 16, mode="lossy")


def test_truncated_file_yields_frames_then_a_decode_error(tmp_path):
    rng = np.random.default_rng(2)  # noise: the frames, not the index, fill the file
    url = str(tmp_path / "full.mp4")
    with VideoWriter(url, 25, 96, 64) as w:  # +faststart: a cut file keeps its index
        for img in rng.integers(0, 256, (40, 64, 96, 3), dtype=np.uint8):
            w.write(img)
    cut = tmp_path / "cut.mp4"
    data = open(url, "rb").read()
    cut.write_bytes(data[: len(data) * 6 // 10])
    got = []
    with pytest.raises(VideoDecodeError, match="cut.mp4") as e:
        with VideoReader(str(cut)) as reader:
            for f in reader:
                got.append(f)
    assert 0 < len(got) < 40 and [f.index for f in got] == list(range(len(got)))
    assert "truncated" in e.value.reason
    full = read_all(url)  # the frames before the damage are the file's own
    assert all(np.array_equal(f.image, full[f.index].image) for f in got)
    # Cut right inside the last frame: the demuxer flags the partial packet, and says no more.
    cut.write_bytes(data[:-100])
    with pytest.raises(VideoDecodeError, match="damaged"):
        read_all(str(cut))


def test_missing_empty_and_non_video_files_raise_naming_the_url(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (text, empty, tmp_path / "missing.mp4"):
        for call in (probe_stream, VideoReader):
            with pytest.raises(VideoDecodeError) as e:
                call(str(path))
            assert e.value.url == str(path) and str(path) in str(e.value)


def _wait_in_source(release: threading.Event, yielded: int):
    """A stand-in decoder: ``yielded`` frames, then it hangs until ``release``."""

    def source(self):
        for k in range(yielded):
            yield DecodedFrame(k, k, np.zeros((self.info.height, self.info.width, 3), np.uint8))
        release.wait()
        raise RuntimeError("released")

    return source


def test_a_stuck_decoder_times_out(clip, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(VideoReader, "_source", _wait_in_source(release, 1))
    reader = VideoReader(clip[0], timeout_s=0.2)
    got = []
    try:
        with pytest.raises(DecodeTimeoutError, match="after frame 0") as e:
            for f in reader:
                got.append(f.index)
        assert got == [0] and e.value.url == clip[0]
    finally:
        release.set()
        reader._thread.join(10)  # released, the abandoned thread ends on its own
    assert not reader._thread.is_alive()


def test_errors_in_the_thread_become_decode_errors(clip, monkeypatch):
    release = threading.Event()
    release.set()
    monkeypatch.setattr(VideoReader, "_source", _wait_in_source(release, 2))
    got = []
    with pytest.raises(VideoDecodeError, match=r"decoding failed at frame 2 \(RuntimeError: released\)"):
        for f in VideoReader(clip[0]):
            got.append(f.index)
    assert got == [0, 1]


def test_close_mid_video_stops_the_thread(clip):
    reader = VideoReader(clip[0], queue_frames=2)
    frames = iter(reader)
    assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    reader.close()  # the producer is blocked on a full queue: close must still end it
    assert not reader._thread.is_alive()
    assert list(frames) == []
    with pytest.raises(RuntimeError, match="once"):
        iter(reader)
    with VideoReader(clip[0], queue_frames=1) as reader:
        for f in reader:
            if f.index == 4:
                break  # leaving the loop ends the reader too
    assert not reader._thread.is_alive()
