"""Checking datasets as they come: every frame and annotation verified (locally, over S3, on Ray Data), sparse
annotations, unreadable copy-and-paste donors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from genprop import masks as masklib
from genprop.datasets import inspect_dataset, open_dataset
from tests import dataset_fixtures as fx
from tests.conftest import upload_tree


def _bad_davis(root: str) -> None:
    """A DAVIS tree with a truncated JPEG mid-sequence, a wrong-size mask, a sequence without annotations, and a
    good sequence whose frames are PNG."""
    truths = fx.write_davis(root, {"bear": {"num_frames": 6}, "cows": {"num_frames": 4}, "dogs": {"num_frames": 3},
                                   "fish": {"num_frames": 4}}, image_sets=False)
    jpg = os.path.join(root, "JPEGImages", "480p", "bear", "00003.jpg")
    data = open(jpg, "rb").read()
    open(jpg, "wb").write(data[: len(data) // 3])
    masklib.write_id_map(os.path.join(root, "Annotations", "480p", "cows", "00002.png"), np.zeros((20, 20), np.uint8))
    shutil.rmtree(os.path.join(root, "Annotations", "480p", "dogs"))
    fx.frames_as_png(root, os.path.join("JPEGImages", "480p"), {"fish": truths["fish"]})



def _assert_exactly_the_planted_items(report: dict) -> None:
    bad = sorted((b["id"], b["reason"]) for b in report["bad"])
    assert [b[0] for b in bad] == ["bear", "cows", "dogs"], bad
    assert bad[0][1].startswith("frame 3: ") and "bear/00003.jpg" in bad[0][1]
    assert bad[1][1].startswith("annotation 2: ") and "cows/00002.png" in bad[1][1]
    assert "dogs" in bad[2][1]
    assert report["videos"] == 4 and report["frames"] == 6 + 4 + 4



def test_verify_reports_every_bad_frame_and_annotation(tmp_path, capsys):
    from jobs.cli import main
    from genprop.datasets.verify import verify_dataset

    root = str(tmp_path / "davis")
    _bad_davis(root)
    assert len(inspect_dataset(root)["bad"]) == 1  # the cheap check sees only the sequence without annotations
    _assert_exactly_the_planted_items(verify_dataset(root))
    assert main(["inspect", root, "--verify"]) == 1  # non-zero: something is bad
    cap = capsys.readouterr()
    assert "verify: 4/4 videos, 3 bad items" in cap.err
    assert cap.out.count("  BAD ") == 3 and "bad items: 3" in cap.out
    for seq in ("bear", "cows", "dogs"):
        for top in ("JPEGImages", "Annotations"):
            shutil.rmtree(os.path.join(root, top, "480p", seq), ignore_errors=True)
    assert main(["inspect", root, "--verify", "--json"]) == 0  # the good sequence alone



@pytest.mark.slow
@pytest.mark.timeout(300)
def test_verify_over_s3_and_as_a_ray_data_job(tmp_path, ray_local, s3_bucket, capsys):
    from jobs.cli import main

    root = str(tmp_path / "davis")
    _bad_davis(root)
    upload_tree(root, s3_bucket + "/davis")
    from genprop.datasets.verify import verify_dataset

    _assert_exactly_the_planted_items(verify_dataset(s3_bucket + "/davis"))
    capsys.readouterr()
    assert main(["inspect", s3_bucket + "/davis", "--verify", "--ray", "--json"]) == 1
    cap = capsys.readouterr()
    _assert_exactly_the_planted_items(json.loads(cap.out.strip().splitlines()[-1]))
    assert "verify: 4/4 videos, 3 bad items" in cap.err



def test_verify_decodes_a_sav_video_whole(tmp_path):
    from genprop.datasets.verify import verify_dataset

    root = str(tmp_path / "sav")
    fx.write_sav(root)
    assert verify_dataset(root)["bad"] == []
    vids = sorted(n for n in os.listdir(root) if n.endswith(".mp4"))
    path = os.path.join(root, vids[0])
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    (bad,) = verify_dataset(root)["bad"]
    assert bad["id"] == vids[0][:-4] and vids[0] in bad["reason"] and bad["reason"].startswith("frame ")



def test_the_shard_listing_stage_can_verify_every_frame(tmp_path):
    from genprop.shards import ShardsConfig, describe_video

    root = str(tmp_path / "davis")
    _bad_davis(root)
    ds = open_dataset(root)
    cheap = describe_video(ds, "bear", ShardsConfig.tiny(frames=2))
    assert cheap["status"] == "ok"  # the truncated frame 3 is in no planned check
    full = describe_video(ds, "bear", ShardsConfig.tiny(frames=2, verify=True))
    assert full["status"] == "skipped" and "bear/00003.jpg" in full["reason"] and full["reason"].startswith("frame 3")
    assert describe_video(ds, "fish", ShardsConfig.tiny(frames=2, verify=True))["status"] == "ok"



def test_sparse_annotations_make_clips_at_the_annotation_rate(tmp_path):
    from genprop.shards import ShardsConfig, describe_video, plan_samples

    root = str(tmp_path / "sav")
    fx.write_sav(root, {"sav_000001": {"num_frames": 40}})  # annotated every 4th frame of 24 fps: 6 fps
    ds = open_dataset(root)
    row = describe_video(ds, "sav_000001", ShardsConfig.tiny())  # 9-frame clips, no fps named
    assert row["status"] == "ok" and row["stride"] == 4 and row["clip_fps"] == "6" and row["starts"] == [0, 4]
    (sample,) = plan_samples([row], ShardsConfig.tiny(), 2)
    assert sample.indices == list(range(0, 33, 4)) and sample.fps == "6"  # each sample records its rate
    wrong = describe_video(ds, "sav_000001", ShardsConfig.tiny(fps="24"))
    assert wrong["status"] == "skipped" and "every 4th frame (6 fps)" in wrong["reason"]
    assert "set fps to 6 or leave it unset" in wrong["reason"]
    yt = str(tmp_path / "yt")  # YouTube-VOS's train split annotates every 5th frame of its JPEGs
    fx.write_youtube_vos(yt, {"v1": {"num_frames": 12}}, frame_step=5)
    row = describe_video(open_dataset(yt), "v1", ShardsConfig.tiny())
    assert row["status"] == "ok" and row["stride"] == 1  # its frames are the annotated ones: every frame



def test_an_unreadable_donor_is_replaced_and_recorded_for_itself(tmp_path):
    import dataclasses as dc

    from genprop.shards import ShardsConfig, describe_video, plan_samples
    from genprop.shards.clip import make_planned_pair
    from genprop.synth import SynthConfig

    root = str(tmp_path / "davis")
    fx.write_davis(root, {s: {"num_frames": 4} for s in ("ant", "bee", "cat", "dog")}, image_sets=False)
    bad = os.path.join(root, "JPEGImages", "480p", "bee", "00001.jpg")  # the listing reads only frame 0's header
    open(bad, "wb").write(open(bad, "rb").read()[:200])
    config = ShardsConfig.tiny(frames=2, clips_per_video=1, synth=dc.replace(SynthConfig.tiny(), ratios=(1, 0, 0)))
    ds = open_dataset(root)
    listing = [describe_video(ds, v, config) for v in ds.videos()]
    assert all(r["status"] == "ok" for r in listing)
    plan = [p.to_row() for p in plan_samples(listing, config, 2)]
    assert plan == [p.to_row() for p in plan_samples(listing, config, 2)]  # deterministic: same donors, same order
    by_donor = [r for r in plan if r["donor_id"] == "bee"]
    assert by_donor, "the seed should draw the bad video as a donor at least once"
    for row in by_donor:
        donors = {}
        pair = make_planned_pair(row, ds, config, donors=donors)  # the receiving video keeps its sample
        assert pair is not None and donors["used"] not in ("bee", "")
        assert donors["used"] == row["donor_fallbacks"][0][0]
        (skip,) = donors["skipped"]
        assert skip["video_id"] == "bee" and "bee/00001.jpg" in skip["reason"]
