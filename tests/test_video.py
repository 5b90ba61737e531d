import multiprocessing
import os
import pickle
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from genprop import storage, video, video_decode
from genprop.errors import DecodeTimeoutError, VideoDecodeError

NTSC = Fraction(30000, 1001)


def smooth_frames(t: int, h: int, w: int) -> np.ndarray:
    """(t, h, w, 3) uint8 gradients whose brightness changes with the frame index."""
    yy, xx = np.mgrid[:h, :w]
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        out[k, ..., 0] = (xx * 200 // max(w - 1, 1) + 5 * k) % 256
        out[k, ..., 1] = yy * 200 // max(h - 1, 1)
        out[k, ..., 2] = (40 + 5 * k) % 256
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 40-frame 30000/1001 fps 64x96 mp4 and the frames it was made from."""
    frames = smooth_frames(40, 64, 96)
    url = str(tmp_path_factory.mktemp("clip") / "clip.mp4")
    video.encode(frames, url, NTSC)
    return url, frames


@pytest.fixture(scope="module")
def full(clip):
    """All frames of ``clip`` as decoded, in-process."""
    return video_decode.decode(clip[0], timeout_s=None)


def test_round_trip_keeps_count_rational_fps_size_and_pixels(clip):
    url, frames = clip
    info = video.probe(url)
    assert (info.num_frames, info.height, info.width) == (40, 64, 96)
    assert isinstance(info.fps, Fraction) and info.fps == NTSC
    assert info.duration_s == pytest.approx(40 * 1001 / 30000)
    out, info2, idx = video_decode.decode_with_info(url)  # default: in a child process under a timeout
    assert info2 == info and idx == list(range(40))
    assert out.shape == (40, 64, 96, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames).mean() < 2.0
    # Every frame is in its place, the last ones included (the encoder was flushed): the blue
    # level is 40 + 5 k in frame k.
    blue = out[..., 2].reshape(40, -1).mean(axis=1)
    assert np.abs(blue - (40 + 5 * np.arange(40))).max() < 2.0
    # A plain, writable array (the child's output file is mapped copy-on-write, then deleted).
    assert type(out) is np.ndarray and out.flags.writeable
    out[0] = 0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(out)), out)


@pytest.mark.parametrize("t", [1, 2, 7])
def test_short_videos_keep_every_frame(tmp_path, t):
    url = str(tmp_path / "s.mp4")
    video.encode(smooth_frames(t, 16, 16), url, 25)
    assert video.probe(url).num_frames == t
    assert video_decode.decode(url, timeout_s=None).shape == (t, 16, 16, 3)


@pytest.mark.parametrize("fps, expected", [
    (NTSC, NTSC), ("30000/1001", NTSC), (24, Fraction(24)), ("25", Fraction(25)),
    (Fraction(24000, 1001), Fraction(24000, 1001)),
])
def test_encode_keeps_rational_fps(tmp_path, fps, expected):
    url = str(tmp_path / "f.mp4")
    video.encode(smooth_frames(3, 16, 16), url, fps)
    assert video.probe(url).fps == expected


def test_parse_fps():
    assert video.parse_fps("30000/1001") == NTSC
    assert video.parse_fps(" 29.97 ") == Fraction(2997, 100)
    assert video.parse_fps(29.97) == Fraction(2997, 100)  # the decimal, not the binary float
    assert video.parse_fps((30000, 1001)) == NTSC
    assert video.parse_fps(30) == 30
    assert video.parse_fps(np.float64(29.97)) == Fraction(2997, 100)
    assert video.parse_fps(np.int64(24)) == 24
    for bad in [0, -1, "abc", "1/0", True, None, [30]]:
        with pytest.raises(ValueError):
            video.parse_fps(bad)


def test_odd_size_uses_yuv444p_and_keeps_its_size(tmp_path):
    url = str(tmp_path / "odd.mp4")
    frames = smooth_frames(5, 33, 47)
    video.encode(frames, url, 30)
    with av.open(url) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"
    info = video.probe(url)
    assert (info.height, info.width) == (33, 47)
    out = video_decode.decode(url, timeout_s=None)
    assert out.shape == (5, 33, 47, 3)
    assert np.abs(out.astype(int) - frames).mean() < 2.0


def test_even_size_uses_yuv420p(clip):
    with av.open(clip[0]) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_lossless_is_near_exact_on_noise(tmp_path):
    # Width 48: decord 0.6 mis-shapes such narrow frames as (H, W, 4); decode must undo that.
    frames = np.random.default_rng(0).integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    lossless, lossy = str(tmp_path / "ll.mp4"), str(tmp_path / "lossy.mp4")
    video.encode(frames, lossless, 30, lossless=True)
    video.encode(frames, lossy, 30, crf=30)
    err = np.abs(video_decode.decode(lossless, timeout_s=None).astype(int) - frames)
    # qp 0 in yuv444p; what remains is RGB <-> YUV rounding.
    assert err.mean() < 1.0 and err.max() <= 4
    assert np.abs(video_decode.decode(lossy, timeout_s=None).astype(int) - frames).mean() > 5


@pytest.mark.parametrize("width", [8, 16, 24, 48])
def test_narrow_widths_decode_as_three_channels(tmp_path, width):
    url = str(tmp_path / "n.mp4")
    frames = smooth_frames(2, 16, width)
    video.encode(frames, url, 30, lossless=True)
    out = video_decode.decode(url, timeout_s=None)
    assert out.shape == (2, 16, width, 3)
    assert np.abs(out.astype(int) - frames).mean() < 1.0


@pytest.mark.parametrize("frames, match", [
    (np.zeros((0, 8, 8, 3), np.uint8), "shape"),
    (np.zeros((2, 8, 8), np.uint8), "shape"),
    (np.zeros((2, 8, 8, 4), np.uint8), "shape"),
    (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
    ([[[[0, 0, 0]]]], "uint8"),
])
def test_encode_rejects_bad_frames_naming_the_url(tmp_path, frames, match):
    url = str(tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match=match) as e:
        video.encode(frames, url, 30)
    assert url in str(e.value)
    assert not os.path.exists(url)


def test_sample_indices_rules():
    s = video.sample_indices
    assert s(10, 30) == list(range(10))
    assert s(90, 30, target_fps=10) == list(range(0, 90, 3))
    # 30000/1001 -> 24: output j takes floor(j * 1250 / 1001); 100 frames give ceil(100 * 1001 / 1250).
    assert s(100, NTSC, target_fps=24) == [j * 1250 // 1001 for j in range(81)]
    assert s(100, NTSC, target_fps=24)[:6] == [0, 1, 2, 3, 4, 6]
    # 30000/1001 -> 24000/1001 is exactly 5/4; in floats, 4 * 1.25 comes out as 4.999...
    assert s(100, NTSC, target_fps="24000/1001")[4] == 5
    assert s(100, Fraction(60000, 1001), target_fps=NTSC) == list(range(0, 100, 2))
    assert s(4, 10, target_fps=20) == [0, 0, 1, 1, 2, 2, 3, 3]  # above the source rate: repeats
    assert s(90, 30, target_fps=10, start=5, max_frames=4) == [5, 8, 11, 14]
    assert s(20, 30, stride=4) == [0, 4, 8, 12, 16]
    assert s(20, 30, stride=4, start=3, max_frames=3) == [3, 7, 11]
    assert s(20, 30, start=18) == [18, 19]
    assert s(20, 30, indices=[5, 1, 1], max_frames=2) == [5, 1]
    with pytest.raises(IndexError):
        s(20, 30, indices=[3, 20])
    with pytest.raises(IndexError):
        s(20, 30, indices=[-1])
    with pytest.raises(IndexError):
        s(20, 30, start=20)
    for bad in [dict(stride=2, target_fps=10), dict(indices=[1], stride=2), dict(indices=[1], start=1),
                dict(stride=0), dict(max_frames=0), dict(indices=[]), dict(target_fps=0), dict(start=-1)]:
        with pytest.raises(ValueError):
            s(20, 30, **bad)


def test_decode_sampling_picks_the_right_frames(clip, full):
    url, _ = clip
    np.testing.assert_array_equal(video_decode.decode(url, indices=[5, 2, 2, 39], timeout_s=None), full[[5, 2, 2, 39]])
    np.testing.assert_array_equal(video_decode.decode(url, stride=3, start=4, max_frames=5, timeout_s=None),
                                  full[4:19:3])
    out, info, idx = video_decode.decode_with_info(url, target_fps=NTSC / 3, timeout_s=None)
    assert idx == list(range(0, 40, 3))
    np.testing.assert_array_equal(out, full[::3])


@pytest.mark.parametrize("kwargs", [dict(indices=[0, 40]), dict(start=40)])
def test_request_beyond_the_end_is_a_typed_error(clip, kwargs):
    url, _ = clip
    with pytest.raises(VideoDecodeError, match="out of range") as e:
        video_decode.decode(url, **kwargs)
    assert url in str(e.value) and e.value.url == url


def test_sparse_indices_seek_across_keyframes(tmp_path):
    """With a keyframe every 5 frames the decoder seeks (forwards and backwards) and skips."""
    url = str(tmp_path / "gop.mp4")
    frames = smooth_frames(40, 32, 32)
    with av.open(url, "w") as c:
        st = c.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 32, 32, "yuv420p"
        st.codec_context.gop_size = 5
        st.options = {"crf": "12", "bf": "0"}
        for f in frames:
            c.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(st.encode(None))
    with av.open(url) as c:
        assert sum(p.is_keyframe for p in c.demux(video=0)) >= 4
    everything = video_decode.decode(url, timeout_s=None)
    idx = [3, 37, 12, 38, 20, 21, 24, 0]
    np.testing.assert_array_equal(video_decode.decode(url, indices=idx, timeout_s=None), everything[idx])


def test_resize(clip, full):
    url, _ = clip
    small = video_decode.decode(url, size=(32, 48), max_frames=3, timeout_s=None)
    assert small.shape == (3, 32, 48, 3)
    for k in range(3):  # shrinking uses INTER_AREA
        np.testing.assert_array_equal(small[k], cv2.resize(full[k], (48, 32), interpolation=cv2.INTER_AREA))
    big = video_decode.decode(url, size=(100, 150), indices=[7], timeout_s=None)
    assert big.shape == (1, 100, 150, 3)
    np.testing.assert_array_equal(big[0], cv2.resize(full[7], (150, 100), interpolation=cv2.INTER_LINEAR))
    with pytest.raises(ValueError):
        video_decode.decode(url, size=(0, 10))


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_decode_gives_the_same_frames(clip, full, chunk):
    out = video_decode.decode(clip[0], chunk_frames=chunk, timeout_s=None)
    np.testing.assert_array_equal(out, full)


def test_child_process_decode_matches_in_process(clip, full):
    out = video_decode.decode(clip[0], chunk_frames=7, size=(32, 48), stride=2)
    np.testing.assert_array_equal(out, video_decode.decode(clip[0], chunk_frames=7, size=(32, 48), stride=2,
                                                    timeout_s=None))
    assert out.shape == (20, 32, 48, 3)


class _WriteLog(np.ndarray):
    """An ndarray that records how many frames each assignment writes."""

    def __setitem__(self, key, value):
        self.writes.append(len(np.asarray(value)) if np.ndim(value) == 4 else 1)
        super().__setitem__(key, value)


def test_decoder_writes_output_in_bounded_chunks(clip, full):
    with storage.local_copy(clip[0]) as path:
        out = np.zeros((40, 64, 96, 3), np.uint8).view(_WriteLog)
        out.writes = []
        video_decode.decord_decoder(path, list(range(40)), out, 16)
    assert out.writes == [16, 16, 8]
    np.testing.assert_array_equal(np.asarray(out), full)


def test_decode_over_s3(s3_bucket, clip, full):
    url = storage.join(s3_bucket, "videos", "clip.mp4")
    video.encode(clip[1], url, NTSC)  # encode publishes to S3 with storage.put_file
    info = video.probe(url)
    assert info.num_frames == 40 and info.fps == NTSC
    np.testing.assert_array_equal(video_decode.decode(url), full)
    np.testing.assert_array_equal(video_decode.decode(url, indices=[3, 1], size=(32, 48), timeout_s=None),
                                  video_decode.decode(clip[0], indices=[3, 1], size=(32, 48), timeout_s=None))
    with pytest.raises(VideoDecodeError, match="not found"):
        video_decode.decode(storage.join(s3_bucket, "videos", "missing.mp4"))


def test_probe_counts_packets_when_the_container_states_no_frame_count(tmp_path):
    url = str(tmp_path / "v.mkv")
    with av.open(url, "w") as c:
        st = c.add_stream("libx264", rate=NTSC)
        st.width, st.height, st.pix_fmt = 32, 16, "yuv420p"
        for f in smooth_frames(13, 16, 32):
            c.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(st.encode(None))
    with av.open(url) as c:
        assert c.streams.video[0].frames == 0  # Matroska states no count
    info = video.probe(url)
    assert info.num_frames == 13 and info.fps == NTSC and (info.height, info.width) == (16, 32)
    assert video_decode.decode(url, timeout_s=None).shape == (13, 16, 32, 3)


def test_gil_holding_decoder_is_killed_by_the_timeout(clip, tmp_path, monkeypatch):
    url = clip[0]
    marker = tmp_path / "gil-released"
    monkeypatch.setenv("GENPROP_TEST_GIL_MARKER", str(marker))
    t0 = time.monotonic()
    with pytest.raises(DecodeTimeoutError) as e:
        video_decode.decode(url, timeout_s=2, decoder="tests._video_test_decoders:hang_holding_gil")
    elapsed = time.monotonic() - t0
    assert 2 <= elapsed < 15
    assert url in str(e.value) and "killed" in str(e.value)
    assert not marker.exists()  # the child's other thread never ran: the GIL really was held
    with pytest.raises(ProcessLookupError):
        os.kill(e.value.pid, 0)
    assert all(p.pid != e.value.pid for p in multiprocessing.active_children())


def test_child_errors_come_back_as_video_decode_errors(clip):
    url = clip[0]
    with pytest.raises(VideoDecodeError, match="synthetic decoder failure") as e:
        video_decode.decode(url, decoder="tests._video_test_decoders:raise_error")
    assert not isinstance(e.value, DecodeTimeoutError) and url in str(e.value)
    with pytest.raises(VideoDecodeError, match="exit code 3"):
        video_decode.decode(url, decoder="tests._video_test_decoders:die")


def test_bad_decoder_spec_is_not_a_data_error(clip):
    with pytest.raises(ImportError):
        video_decode.decode(clip[0], decoder="tests.no_such_module:f")
    with pytest.raises(AttributeError):
        video_decode.decode(clip[0], decoder="tests._video_test_decoders:no_such_function")
    with pytest.raises(ValueError, match="module:function"):
        video_decode.decode(clip[0], decoder="tests._video_test_decoders")


def test_daemonic_process_gets_a_clear_error(clip, monkeypatch):
    class Daemon:
        daemon = True

    monkeypatch.setattr(multiprocessing, "current_process", lambda: Daemon())
    with pytest.raises(RuntimeError, match="timeout_s=None"):
        video_decode.decode(clip[0])


def _corrupt(kind: str, tmp_path, clip_url: str) -> str:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(20000))
    elif kind == "truncated":
        data = open(clip_url, "rb").read()
        path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.mark.parametrize("kind, reason", [
    ("missing", "not found"), ("empty", "empty"), ("random", "not a readable video"),
    ("truncated", "decoding failed"),
])
def test_corrupt_inputs_raise_typed_errors_naming_the_file(tmp_path, clip, kind, reason):
    url = _corrupt(kind, tmp_path, clip[0])
    for timeout_s in (30, None):
        with pytest.raises(VideoDecodeError, match=reason) as e:
            video_decode.decode(url, timeout_s=timeout_s)
        assert type(e.value) is VideoDecodeError and e.value.url == url and url in str(e.value)
    if kind != "truncated":  # a truncated file keeps its index (+faststart): probe reads it
        with pytest.raises(VideoDecodeError, match=reason):
            video.probe(url)


def test_encode_is_byte_identical_across_runs(tmp_path):
    # Reruns of a job must not change what they already wrote (x264's mbtree was not reproducible).
    frames = smooth_frames(40, 64, 96)
    for i in range(8):
        video.encode(frames, str(tmp_path / f"{i}.mp4"), NTSC)
    data = {(tmp_path / f"{i}.mp4").read_bytes() for i in range(8)}
    assert len(data) == 1
