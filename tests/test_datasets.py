"""Dataset readers (YouTube-VOS, DAVIS, SA-V): records, layout detection, S3, bad inputs, pickling."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from fractions import Fraction

import numpy as np
import pytest

from genprop import masks as masklib
from genprop.datasets import (
    ObjectMasks,
    VideoRecord,
    detect_format,
    inspect_dataset,
    iter_videos,
    open_dataset,
)
from genprop.errors import (
    AnnotationError,
    DataError,
    ImageReadError,
    UnknownLayoutError,
    VideoDecodeError,
)
from tests import dataset_fixtures as fx
from tests.conftest import upload_tree

JPEG_TOL = 4.0  # mean absolute error per pixel channel after JPEG at quality 95
MP4_TOL = 6.0   # after H.264 at crf 12 with 4:2:0 chroma


def assert_matches(rec: VideoRecord, truth: fx.Truth, tol: float) -> None:
    """Metadata equal, frames close, masks exact."""
    t, h, w = truth.frames.shape[:3]
    assert (rec.num_frames, rec.height, rec.width) == (t, h, w)
    assert isinstance(rec.fps, Fraction) and rec.fps == truth.fps
    assert rec.object_ids == truth.object_ids
    assert rec.annotated_frames == truth.annotated
    frames = rec.frames()
    assert frames.dtype == np.uint8 and frames.shape == truth.frames.shape
    assert np.abs(frames.astype(float) - truth.frames).mean() < tol
    m = rec.masks()
    assert isinstance(m, ObjectMasks)
    assert m.object_ids == truth.object_ids and m.frame_indices == truth.annotated
    assert m.masks.dtype == bool and m.masks.shape == (len(truth.object_ids), len(truth.annotated), h, w)
    for k, oid in enumerate(truth.object_ids):
        np.testing.assert_array_equal(m.masks[k], truth.masks[oid][list(truth.annotated)])


# ---------------------------------------------------------------- YouTube-VOS

def test_youtube_vos_records(tmp_path):
    truths = fx.write_youtube_vos(str(tmp_path), {
        "vid_a": {}, "vid_b": {"num_frames": 4, "num_objects": 1, "annotated": (0, 2)}})
    ds = open_dataset(str(tmp_path))
    assert ds.format == "youtube-vos" and ds.videos() == ["vid_a", "vid_b"]
    for vid, truth in truths.items():
        rec = ds.record(vid)
        assert rec.source == "youtube-vos" and rec.video_id == vid
        assert rec.fps == Fraction(6)  # every 5th frame of 30 fps
        assert_matches(rec, truth, JPEG_TOL)
    rec = ds.record("vid_a")
    # Indices in any order, and resizing to (height, width).
    sub = rec.frames([3, 1])
    assert np.abs(sub.astype(float) - truths["vid_a"].frames[[3, 1]]).mean() < JPEG_TOL
    assert rec.frames([0], size=(24, 40)).shape == (1, 24, 40, 3)
    assert rec.masks([2]).masks.shape == (2, 1, 48, 64)
    with pytest.raises(ValueError):
        ds.record("vid_b").masks([1])  # not annotated
    with pytest.raises(IndexError):
        rec.frames([6])
    assert ds.categories("vid_a") == {1: "box", 2: "box"}


def test_youtube_vos_fps_from_meta_and_no_meta(tmp_path):
    truths = fx.write_youtube_vos(str(tmp_path / "a"), fps="12/1")
    rec = open_dataset(str(tmp_path / "a"), "youtube-vos").record("vid_a")
    assert rec.fps == Fraction(12) and isinstance(rec.fps, Fraction)
    assert_matches(rec, truths["vid_a"], JPEG_TOL)

    # Without meta.json: objects from the first annotation, 6 fps.
    truths = fx.write_youtube_vos(str(tmp_path / "b"), meta=False)
    ds = open_dataset(str(tmp_path / "b"))
    assert ds.format == "youtube-vos"
    for vid, truth in truths.items():
        assert_matches(ds.record(vid), truth, JPEG_TOL)


def test_youtube_vos_checks_object_ids_against_annotations(tmp_path):
    fx.write_youtube_vos(str(tmp_path))
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["videos"]["vid_a"]["objects"]["2"]  # the annotations still hold object 2
    meta_path.write_text(json.dumps(meta))
    rec = open_dataset(str(tmp_path)).record("vid_a")
    assert rec.object_ids == (1,)
    with pytest.raises(AnnotationError, match=r"object ids \[2\]"):
        rec.masks()


# ---------------------------------------------------------------- DAVIS

def test_davis_palette(tmp_path):
    truths = fx.write_davis(str(tmp_path))
    ds = open_dataset(str(tmp_path))
    assert ds.format == "davis" and ds.videos() == ["bear", "cows"]  # union of train + val
    for vid, truth in truths.items():
        rec = ds.record(vid)
        assert rec.source == "davis" and rec.fps == 24
        assert_matches(rec, truth, JPEG_TOL)


def test_davis_binary_masks_432x240_full_resolution_without_image_sets(tmp_path):
    truths = fx.write_davis(str(tmp_path), {"blackswan": {"num_frames": 3}}, size=(240, 432),
                            binary=True, resolution="Full-Resolution", image_sets=False)
    ds = open_dataset(str(tmp_path))
    assert ds.format == "davis" and ds.videos() == ["blackswan"]
    rec = ds.record("blackswan")
    assert (rec.height, rec.width) == (240, 432) and rec.object_ids == (1,)
    assert_matches(rec, truths["blackswan"], JPEG_TOL)


# ---------------------------------------------------------------- SA-V

def test_sav_records_in_subdirectory(tmp_path):
    truths = fx.write_sav(str(tmp_path), {
        "sav_000001": {"masklet_ids": (3, 7)}, "sav_000002": {"num_frames": 6, "num_objects": 1}},
        subdir="sav_000", auto=True)
    ds = open_dataset(str(tmp_path))
    assert ds.format == "sav" and ds.videos() == ["sav_000001", "sav_000002"]
    rec = ds.record("sav_000001")
    assert rec.url.endswith("sav_000/sav_000001.mp4")
    assert rec.object_ids == (4, 8)  # masklet_id + 1
    assert rec.annotated_frames == (0, 4, 8)
    for vid, truth in truths.items():
        assert_matches(ds.record(vid), truth, MP4_TOL)
    assert ds.record("sav_000001").frames([8, 2]).shape == (2, 48, 64, 3)
    # The auto JSON holds only the first masklet.
    auto = open_dataset(str(tmp_path), which="auto").record("sav_000001")
    assert auto.object_ids == (4,)
    np.testing.assert_array_equal(auto.masks([4]).masks[0, 0], truths["sav_000001"].masks[4][4])


def test_sav_manual_only_missing(tmp_path):
    fx.write_sav(str(tmp_path), {"sav_000009": {}}, manual=False, auto=True)
    assert open_dataset(str(tmp_path)).record("sav_000009").object_ids == (1,)
    with pytest.raises(AnnotationError, match="manual"):
        open_dataset(str(tmp_path), which="manual").record("sav_000009")


# ---------------------------------------------------------------- layout detection

def test_detect_format_and_unknown_layout(tmp_path):
    fx.write_youtube_vos(str(tmp_path / "y"), {"v": {"num_frames": 2}})
    fx.write_davis(str(tmp_path / "d"), {"s": {"num_frames": 2}})
    fx.write_sav(str(tmp_path / "s"), {"sav_1": {"num_frames": 4}})
    assert detect_format(str(tmp_path / "y")) == "youtube-vos"
    assert detect_format("file://" + str(tmp_path / "d")) == "davis"
    assert detect_format(str(tmp_path / "s")) == "sav"
    (tmp_path / "other" / "train").mkdir(parents=True)
    (tmp_path / "other" / "readme.txt").write_text("x")
    with pytest.raises(UnknownLayoutError) as e:
        detect_format(str(tmp_path / "other"))
    assert "JPEGImages" in e.value.reason and "sav_" in e.value.reason and "train" in e.value.reason
    assert e.value.url == str(tmp_path / "other")
    with pytest.raises(UnknownLayoutError):
        open_dataset(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        open_dataset(str(tmp_path / "y"), format="kinetics")


# ---------------------------------------------------------------- S3

def test_youtube_vos_and_sav_over_s3(s3_bucket, tmp_path):
    y_truth = fx.write_youtube_vos(str(tmp_path / "y"), fps="30000/1001")
    s_truth = fx.write_sav(str(tmp_path / "s"), {"sav_000001": {}}, subdir="sav_000")
    upload_tree(str(tmp_path / "y"), s3_bucket + "/ytvos/train")
    upload_tree(str(tmp_path / "s"), s3_bucket + "/sav")

    ds = open_dataset(s3_bucket + "/ytvos/train")
    assert ds.format == "youtube-vos" and ds.videos() == sorted(y_truth)
    for vid, truth in y_truth.items():
        rec = ds.record(vid)
        assert rec.url.startswith("s3://")
        assert_matches(rec, truth, JPEG_TOL)
    report = inspect_dataset(s3_bucket + "/ytvos/train")
    assert report["bad"] == [] and report["videos"][0]["fps"] == "30000/1001"

    ds = open_dataset(s3_bucket + "/sav")
    assert ds.format == "sav" and ds.videos() == ["sav_000001"]
    rec = ds.record("sav_000001")
    assert rec.url == s3_bucket + "/sav/sav_000/sav_000001.mp4"
    assert_matches(rec, s_truth["sav_000001"], MP4_TOL)


# ---------------------------------------------------------------- bad inputs

def _corrupt(path) -> None:
    with open(path, "wb") as f:
        f.write(b"\xff\xd8 this is not a jpeg")


def test_bad_image_sequences_raise_and_are_skipped(tmp_path):
    root = str(tmp_path)
    fx.write_youtube_vos(root, {v: {"num_frames": 3} for v in
                                ("good", "bad_jpeg", "bad_mid", "size_mismatch", "no_ann")})
    _corrupt(tmp_path / "JPEGImages" / "bad_jpeg" / "00000.jpg")
    _corrupt(tmp_path / "JPEGImages" / "bad_mid" / "00005.jpg")
    masklib.write_id_map(str(tmp_path / "Annotations" / "size_mismatch" / "00000.png"),
                         np.zeros((20, 30), np.uint8))
    shutil.rmtree(tmp_path / "Annotations" / "no_ann")
    ds = open_dataset(root)

    with pytest.raises(ImageReadError) as e:
        ds.record("bad_jpeg")
    assert e.value.url.endswith("bad_jpeg/00000.jpg")
    with pytest.raises(ImageReadError, match="00005.jpg"):
        ds.record("bad_mid").frames()
    with pytest.raises(AnnotationError, match="annotation is 20x30 but its frame is 48x64"):
        ds.record("size_mismatch").masks()
    with pytest.raises(AnnotationError) as e:
        ds.record("no_ann")
    assert "Annotations/no_ann" in e.value.url

    bad = {}
    good = [r.video_id for r in iter_videos(root, on_bad=lambda vid, why: bad.setdefault(vid, why))]
    # bad_mid's broken frame is neither first nor last: only reading it finds it.
    assert good == ["bad_mid", "good"]
    assert set(bad) == {"bad_jpeg", "no_ann", "size_mismatch"}
    assert "00000.jpg" in bad["bad_jpeg"] and "20x30" in bad["size_mismatch"]

    report = inspect_dataset(root)
    assert report["format"] == "youtube-vos"
    assert {b["id"] for b in report["bad"]} == {"bad_jpeg", "no_ann", "size_mismatch"}
    assert report["videos"][-1] == {"id": "good", "frames": 3, "height": 48, "width": 64,
                                    "fps": "6", "objects": [1, 2], "annotated_frames": 3}
    json.dumps(report)  # the CLI prints it as JSON


def test_bad_davis_annotation_size(tmp_path):
    fx.write_davis(str(tmp_path), size=(240, 432), binary=True)
    masklib.write_binary_png(str(tmp_path / "Annotations/480p/bear/00000.png"),
                             np.zeros((480, 854), bool))
    with pytest.raises(AnnotationError, match="480x854"):
        open_dataset(str(tmp_path)).record("bear")
    report = inspect_dataset(str(tmp_path))
    assert [b["id"] for b in report["bad"]] == ["bear"] and report["videos"][0]["id"] == "cows"


def test_bad_sav_rle_size_and_truncated_mp4(tmp_path):
    root = str(tmp_path)
    fx.write_sav(root, {v: {"num_frames": 9} for v in ("sav_good", "sav_rle", "sav_trunc", "sav_noann")})
    path = tmp_path / "sav_rle_manual.json"
    doc = json.loads(path.read_text())
    doc["masklet"][1][0] = masklib.rle_encode(np.zeros((24, 32), bool))
    path.write_text(json.dumps(doc))
    mp4 = tmp_path / "sav_trunc.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    os.remove(tmp_path / "sav_noann_manual.json")
    ds = open_dataset(root)

    with pytest.raises(AnnotationError, match="RLE size") as e:
        ds.record("sav_rle")
    assert e.value.url.endswith("sav_rle_manual.json")
    with pytest.raises(VideoDecodeError) as e:
        rec = ds.record("sav_trunc")
        rec.frames()
    assert e.value.url.endswith("sav_trunc.mp4")
    with pytest.raises(AnnotationError, match="no annotations"):
        ds.record("sav_noann")

    bad = {}
    good = [r.video_id for r in iter_videos(root, on_bad=lambda vid, why: bad.setdefault(vid, why))]
    assert good == ["sav_good"] and set(bad) == {"sav_rle", "sav_trunc", "sav_noann"}
    report = inspect_dataset(root)
    assert report["format"] == "sav" and [v["id"] for v in report["videos"]] == ["sav_good"]
    assert {b["id"] for b in report["bad"]} == {"sav_rle", "sav_trunc", "sav_noann"}
    assert report["videos"][0]["fps"] == "24" and report["videos"][0]["annotated_frames"] == 3


def test_sav_json_disagreeing_with_video(tmp_path):
    fx.write_sav(str(tmp_path), {"sav_x": {"num_frames": 8}})
    path = tmp_path / "sav_x_manual.json"
    doc = json.loads(path.read_text())
    doc["video_frame_count"] = 12
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="12 frames") as e:
        open_dataset(str(tmp_path)).record("sav_x")
    assert e.value.url.endswith("sav_x_manual.json")


# ---------------------------------------------------------------- pickling

def test_records_pickle_round_trip(tmp_path):
    fx.write_youtube_vos(str(tmp_path / "y"), {"v": {"num_frames": 3}})
    fx.write_davis(str(tmp_path / "d"), {"s": {"num_frames": 3}}, binary=True)
    fx.write_sav(str(tmp_path / "s"), {"sav_1": {"num_frames": 5}})
    for sub, vid in (("y", "v"), ("d", "s"), ("s", "sav_1")):
        rec = open_dataset(str(tmp_path / sub)).record(vid)
        blob = pickle.dumps(rec)
        assert len(blob) < 4096  # metadata only, no pixels
        back = pickle.loads(blob)
        assert back == rec
        np.testing.assert_array_equal(back.frames(), rec.frames())
        np.testing.assert_array_equal(back.masks().masks, rec.masks().masks)


def test_errors_are_data_errors():
    # Batch code catches DataError alone; every reader error must be one.
    for cls in (AnnotationError, ImageReadError, UnknownLayoutError, VideoDecodeError):
        assert issubclass(cls, DataError)


@pytest.mark.parametrize("layout", ["davis", "youtube-vos"])
def test_png_frames_are_read_as_frames(tmp_path, layout):
    root = str(tmp_path / layout)
    if layout == "davis":
        truths = fx.write_davis(root)
        fx.frames_as_png(root, os.path.join("JPEGImages", "480p"), truths)
    else:
        truths = fx.write_youtube_vos(root)
        fx.frames_as_png(root, "JPEGImages", truths)
    report = inspect_dataset(root, format=layout)
    assert report["bad"] == [] and len(report["videos"]) == len(truths)
    ds = open_dataset(root)
    for vid, truth in truths.items():
        rec = ds.record(vid)
        assert rec.num_frames == len(truth.frames)
        assert np.array_equal(rec.frames(list(range(rec.num_frames))), truth.frames)  # PNG: exact


def test_a_wrong_format_names_the_layout_it_expected_and_what_it_found(tmp_path, capsys):
    from jobs.cli import main

    davis = str(tmp_path / "davis")
    fx.write_davis(davis)
    for wrong in ("sav", "youtube-vos"):
        assert main(["inspect", davis, "--format", wrong]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"not a {wrong} tree: expected" in err
        assert "JPEGImages/ holds 480p" in err and err.endswith("this is a davis tree: pass --format davis (or auto)")
    other = tmp_path / "other"
    (other / "clips").mkdir(parents=True)
    with pytest.raises(UnknownLayoutError, match=r"not a davis tree: expected JPEGImages/480p/ .*; found clips$"):
        open_dataset(str(other), "davis")
    assert main(["inspect", davis, "--format", "davis"]) == 0  # the right one still reads


