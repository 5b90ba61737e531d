"""The readers on the procedural world's own output: YouTube-VOS as written, DAVIS as converted."""

import json
import os
import shutil
from fractions import Fraction

import numpy as np
import pytest

from genprop.datasets import inspect_dataset, open_dataset
from genprop.datasets.procedural import WorldConfig, write_world
from tests.conftest import upload_tree


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(str(out), WorldConfig(videos=2, frames=8, height=48, width=64, fps="12", seed=3))
    return out


def _truth_ids(world, vid):
    return np.load(next((world / "cases").glob(f"{vid}_*/ground_truth.npz")))["original"]


def test_youtube_vos_reader_on_world(world):
    ds = open_dataset(str(world))
    assert ds.format == "youtube-vos"
    meta = json.loads((world / "meta.json").read_text())
    assert ds.videos() == sorted(meta["videos"])
    for vid in ds.videos():
        rec = ds.record(vid)
        assert (rec.num_frames, rec.height, rec.width, rec.fps) == (8, 48, 64, Fraction(12))
        assert rec.object_ids == tuple(sorted(int(k) for k in meta["videos"][vid]["objects"]))
        frames = rec.frames()
        # JPEG at quality 95 against the exact render kept in every case's ground truth.
        original = _truth_ids(world, vid)
        assert np.abs(frames.astype(int) - original.astype(int)).mean() < 3.0
        m = rec.masks()
        assert m.masks.shape == (len(rec.object_ids), 8, 48, 64)
        assert all(m.masks[k].any() for k in range(len(rec.object_ids)))


def test_effect_masks_read_from_the_world_equal_the_render(world, tmp_path):
    from genprop.datasets.procedural import make_scene, render
    from genprop.datasets.procedural.memory import RenderedWorld
    from genprop.errors import AnnotationError

    config = WorldConfig(videos=2, frames=8, height=48, width=64, fps="12", seed=3)
    ds = open_dataset(str(world))
    memory = RenderedWorld([config.video_seed(i) for i in range(2)], config)
    for i, vid in enumerate(ds.videos()):
        rec = ds.record(vid)
        rendered = render(make_scene(config.video_seed(i), config))
        fx = rec.effects([0, 3, 7])
        assert fx.object_ids == rec.object_ids and fx.frame_indices == (0, 3, 7)
        for k, oid in enumerate(rec.object_ids):
            np.testing.assert_array_equal(fx.masks[k], rendered.effects[oid][[0, 3, 7]])
        mem = memory.record(memory.videos()[i])
        assert mem.object_ids == rec.object_ids
        np.testing.assert_array_equal(mem.effects([0, 3, 7]).masks, fx.masks)
    assert any(ds.record(v).effects(range(8)).masks.any() for v in ds.videos())  # the world has shadows
    # a layout without Effects/ (every real dataset) has none; a missing file is an error that names it
    seqs = _to_davis(world, tmp_path / "davis")
    assert open_dataset(str(tmp_path / "davis")).record(seqs[0]).effects([0]) is None
    copy = tmp_path / "copy"
    shutil.copytree(world, copy)
    vid = ds.videos()[0]
    oid = ds.record(vid).object_ids[0]
    (copy / "Effects" / vid / str(oid) / "00002.png").unlink()
    with pytest.raises(AnnotationError, match=rf"{oid}/00002.png"):
        open_dataset(str(copy)).record(vid).effects([1, 2])


def _to_davis(world, out):
    """Re-lay the world as DAVIS 2017: JPEGImages/480p/<seq>, Annotations/480p/<seq>, ImageSets."""
    seqs = sorted(os.listdir(world / "JPEGImages"))
    for sub in ("JPEGImages", "Annotations"):
        for seq in seqs:
            shutil.copytree(world / sub / seq, out / sub / "480p" / seq)
    (out / "ImageSets" / "2017").mkdir(parents=True)
    (out / "ImageSets" / "2017" / "val.txt").write_text("\n".join(seqs) + "\n")
    return seqs


def test_davis_reader_on_world(world, tmp_path):
    seqs = _to_davis(world, tmp_path)
    ds = open_dataset(str(tmp_path))
    assert ds.format == "davis" and ds.videos() == seqs
    yvos = open_dataset(str(world))
    for seq in seqs:
        a, b = ds.record(seq), yvos.record(seq)
        assert a.fps == Fraction(24)  # DAVIS's rate; the layout has no place for ours
        assert (a.num_frames, a.object_ids, a.annotated_frames) == (b.num_frames, b.object_ids, b.annotated_frames)
        np.testing.assert_array_equal(a.masks().masks, b.masks().masks)


def test_inspect_world_over_s3(world, s3_bucket):
    upload_tree(str(world), s3_bucket + "/world")
    report = inspect_dataset(s3_bucket + "/world")
    assert report["format"] == "youtube-vos" and report["bad"] == []
    assert [v["id"] for v in report["videos"]] == sorted(os.listdir(world / "JPEGImages"))
