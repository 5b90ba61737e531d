"""Batch propagation end to end: Ray Data actor pool, local S3, bad rows recorded, rerun skips finished rows."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from genprop import masks, storage, video, video_decode
from genprop.errors import DataError
from genprop.models import GenPropConfig, GenPropModel
from genprop.propagation.manifest import read_manifest, row_problem
from tests.conftest import upload_tree


def _clip(t, h, w, seed):
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 255, (1, h, w, 3)) + rng.integers(-9, 9, (t, 1, 1, 3)), 0, 255).astype(np.uint8)


def test_manifest_formats_and_row_checks(tmp_path):
    rows = [{"id": "a", "video": "v/a.mp4", "edited_first_frame": "s3://b/a.png", "prompt": "p", "task": "remove"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "m.csv").write_text("id,video,edited_first_frame,prompt,task\na,v/a.mp4,s3://b/a.png,p,remove\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), str(tmp_path / "m.parquet"))
    for name in ("m.jsonl", "m.csv", "m.parquet"):
        (row,) = read_manifest(str(tmp_path / name))
        assert row["video"] == f"{tmp_path}/v/a.mp4" and row["edited_first_frame"] == "s3://b/a.png"
        assert row["task"] == "remove" and row["prompt"] == "p"
    (tmp_path / "bad.csv").write_text("name,video\nx,y\n")
    with pytest.raises(DataError, match="bad.csv: manifest lacks column"):
        read_manifest(str(tmp_path / "bad.csv"))
    seen: set = set()
    base = {"video": "v", "edited_first_frame": "e", "prompt": "", "task": "auto"}
    assert row_problem({**base, "id": "ok"}, seen) is None
    assert "duplicate" in row_problem({**base, "id": "ok"}, seen)
    for bad in ("../x", "a/b", "..", ""):
        assert "not a plain file name" in row_problem({**base, "id": bad}, seen)
    assert "unknown task" in row_problem({**base, "id": "t", "task": "paint"}, seen)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_batch_job_on_ray_and_s3(tmp_path, ray_local, s3_bucket):
    from jobs.propagate import main

    src = tmp_path / "src"
    (src / "videos").mkdir(parents=True)
    fps = Fraction(30000, 1001)
    good = {"a": (9, 32, 32), "b": (11, 33, 47)}
    for rid, (t, h, w) in good.items():
        video.encode(_clip(t, h, w, len(rid)), str(src / "videos" / f"{rid}.mp4"), fps)
        edited = video_decode.decode(str(src / "videos" / f"{rid}.mp4"))[0].copy()
        edited[4:12, 4:12] = (255, 0, 0)
        masks.write_image(str(src / "videos" / f"{rid}.png"), edited)
    (src / "videos" / "broken.mp4").write_bytes(b"not a video at all")
    masks.write_image(str(src / "videos" / "small.png"), np.zeros((8, 8, 3), np.uint8))
    GenPropModel(GenPropConfig.tiny("wan")).save_pretrained(str(src / "ckpt"))
    lines = ["id,video,edited_first_frame,prompt,task",
             "a,videos/a.mp4,videos/a.png,a red square,insert",
             "b,videos/b.mp4,videos/b.png,,track",
             "broken,videos/broken.mp4,videos/a.png,,auto",
             "noframe,videos/a.mp4,videos/missing.png,,auto",
             "mismatch,videos/a.mp4,videos/small.png,,auto",
             "../escape,videos/a.mp4,videos/a.png,,auto"]
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    upload_tree(str(src), s3_bucket + "/in")
    out = s3_bucket + "/out"
    argv = ["--manifest", s3_bucket + "/in/manifest.csv", "--output", out, "--model", s3_bucket + "/in/ckpt"]

    assert main(argv) == 0
    summary = json.loads(storage.read_text(out + "/_summary.json"))
    assert (summary["rows"], summary["done"], summary["skipped"], summary["error"]) == (6, 2, 0, 4)
    reasons = {e["id"]: e["reason"] for e in summary["errors"]}
    assert "broken.mp4" in reasons["broken"]
    assert "missing.png" in reasons["noframe"] and "not found" in reasons["noframe"]
    assert "size mismatch" in reasons["mismatch"]
    assert "not a plain file name" in reasons["../escape"]
    for rid, (t, h, w) in good.items():
        for suffix in ("", "_mask"):
            with storage.local_copy(f"{out}/{rid}{suffix}.mp4") as path:
                info = video.probe(path)
            assert (info.num_frames, info.height, info.width, info.fps) == (t, h, w, fps)
    assert storage.exists(f"{out}/b_track.mp4") and not storage.exists(f"{out}/a_track.mp4")
    assert not storage.exists(f"{out}/broken.mp4")
    stamp = storage.filesystem(f"{out}/a.mp4")[0].info(f"{out}/a.mp4".removeprefix("s3://"))["ETag"]

    # rerun: finished rows are skipped, bad rows are reported again
    assert main(argv + ["--limit", "5"]) == 0
    summary = json.loads(storage.read_text(out + "/_summary.json"))
    assert (summary["rows"], summary["done"], summary["skipped"], summary["error"]) == (5, 0, 2, 3)
    fs = storage.filesystem(f"{out}/a.mp4")[0]
    fs.invalidate_cache()
    assert fs.info(f"{out}/a.mp4".removeprefix("s3://"))["ETag"] == stamp
