"""The procedural world: determinism, exact edit ground truth, effects, the on-disk layout, resume, S3."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time

import numpy as np
import pytest

from genprop import masks, storage, video_decode
from genprop.datasets.procedural import (
    CASE_FILES, TASKS, WorldConfig, make_case, make_cases, make_scene, render, write_world)

SMALL = WorldConfig(videos=2, frames=6, height=48, width=64, fps="12", seed=3)


def _scene_with(n_objects_at_least: int, config: WorldConfig = WorldConfig()):
    for seed in range(100):
        scene = make_scene(seed, config)
        if len(scene.objects) >= n_objects_at_least:
            return scene
    raise AssertionError("no scene with enough objects")


def test_same_seed_same_world_different_seed_different():
    cfg = WorldConfig(frames=8, height=64, width=64)
    a, b = make_scene(7, cfg), make_scene(7, cfg)
    assert a == b
    ra, rb = render(a), render(b)
    assert np.array_equal(ra.frames, rb.frames) and np.array_equal(ra.ids, rb.ids)
    assert ra.effects.keys() == rb.effects.keys()
    assert all(np.array_equal(ra.effects[k], rb.effects[k]) for k in ra.effects)
    rc = render(make_scene(8, cfg))
    assert not np.array_equal(ra.frames, rc.frames)
    # Video seeds are stable per (world seed, index) and distinct.
    assert cfg.video_seed(0) == WorldConfig(seed=0).video_seed(0) != cfg.video_seed(1)
    assert cfg.video_id(3) == "proc_s0_v0003"


def test_render_shapes_and_speed():
    scene = _scene_with(3)
    render(scene)  # warm-up
    t0 = time.perf_counter()
    out = render(scene)
    elapsed = time.perf_counter() - t0
    assert out.frames.shape == (16, 128, 128, 3) and out.frames.dtype == np.uint8
    assert out.ids.shape == (16, 128, 128) and out.ids.dtype == np.uint8
    assert set(np.unique(out.ids)) <= {0} | {o.id for o in scene.objects}
    for k, eff in out.effects.items():
        assert eff.shape == (16, 128, 128) and eff.dtype == bool
        assert not (eff & (out.ids > 0)).any()  # effects only on visible background
    assert elapsed < 1.0, f"16x128x128 with {len(scene.objects)} objects took {elapsed:.2f}s"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_removal_exact_outside_and_differs_inside(seed):
    cfg = WorldConfig(frames=8, height=96, width=96)
    scene = make_scene(seed, cfg)
    original = render(scene)
    for obj in scene.objects:
        case = make_case(scene, "v", "remove", original=original, object_id=obj.id)
        region = original.region(obj.id)
        assert np.array_equal(case.mask, region)
        assert np.array_equal(case.effect_mask, original.effects[obj.id])
        outside = ~case.mask
        assert np.array_equal(case.target[outside], case.original[outside])
        if case.mask.sum() > 20:
            differs = np.any(case.target != case.original, axis=-1)[case.mask]
            assert differs.mean() > 0.5, f"only {differs.mean():.2f} of the mask changed"
        # The object is gone from the target render, the others stay.
        without = render(scene, without=(obj.id,))
        assert not (without.ids == obj.id).any()


def test_effects_move_with_their_object():
    cfg = WorldConfig(frames=10, height=96, width=128, pan=False)
    base = make_scene(11, cfg)
    obj = base.objects[0]
    y = base.ground - obj.size * 1.3  # low enough to be reflected
    path = tuple((20.0 + 8.0 * t, y - 2.0 * t) for t in range(cfg.frames))
    moving = dataclasses.replace(obj, path=path, angles=(0.0,) * cfg.frames, shape="circle", size=10.0)
    scene = dataclasses.replace(base, objects=(moving,), sun=0.0, puddle=(0.0, float(base.world_width)))
    out = render(scene)
    obj_x, eff_x, refl_y, obj_y = [], [], [], []
    for t in range(cfg.frames):
        ys, xs = np.nonzero(out.ids[t] == obj.id)
        ey, ex = np.nonzero(out.effects[obj.id][t])
        assert len(xs) and len(ex), f"frame {t}: object or effects missing"
        obj_x.append(xs.mean()), eff_x.append(ex.mean()), obj_y.append(ys.mean())
        below = ey > scene.ground + 2
        refl_y.append(ey[below].min())
    obj_x, eff_x = np.array(obj_x), np.array(eff_x)
    assert np.abs(eff_x - obj_x).max() < 2.0
    assert np.corrcoef(obj_x, eff_x)[0, 1] > 0.99
    # The reflection mirrors the object about the floor line: as the object rises, its
    # reflection's top edge goes down.
    assert obj_y[-1] < obj_y[0] and refl_y[-1] > refl_y[0]
    # And in general scenes the effect centroid tracks the object's x centroid.
    scene = make_scene(5, WorldConfig(frames=12, pan=False))
    out = render(scene)
    for o in scene.objects:
        ok = [t for t in range(12) if (out.ids[t] == o.id).sum() > 30 and out.effects[o.id][t].sum() > 10]
        if len(ok) < 6:
            continue
        ox = np.array([np.nonzero(out.ids[t] == o.id)[1].mean() for t in ok])
        ex = np.array([np.nonzero(out.effects[o.id][t])[1].mean() for t in ok])
        if np.ptp(ox) > 8:
            assert np.corrcoef(ox, ex)[0, 1] > 0.8


def test_every_case_kind(tmp_path):
    from genprop.datasets.procedural import write_case

    cfg = WorldConfig(frames=6, height=64, width=80)
    scene = _scene_with(3, cfg)
    cases = make_cases(scene, "vid", cfg)
    assert [c.task for c in cases] == list(TASKS)
    assert len({c.case_id for c in cases}) == len(cases)
    for case in cases:
        assert "." not in case.case_id and case.case_id.startswith("vid_" + case.task)
        assert case.mask.shape == (6, 64, 80) and case.mask.dtype == bool and case.mask.any()
        outside = ~case.mask
        assert np.array_equal(case.target[outside], case.original[outside])
        assert (case.target != case.original).any()
        assert case.prompt
        if case.task in ("remove", "track"):
            assert case.effect_mask is not None and case.effect_mask.shape == case.mask.shape
            assert not (case.effect_mask & ~case.mask).any()
        if case.task == "track":
            assert case.prompt == "track colored regions"
        info = write_case(str(tmp_path / case.case_id), case)
        for name in CASE_FILES.values():
            assert os.path.getsize(tmp_path / case.case_id / name) > 0, name
        parsed = json.loads((tmp_path / case.case_id / "case.json").read_text())
        assert parsed == json.loads(json.dumps(info))
        assert {"case_id", "task", "video_id", "object_id", "prompt", "frames", "height", "width",
                "fps", "seed", "files"} <= parsed.keys()
        assert parsed["fps"] == "12" and parsed["files"] == CASE_FILES
        assert (parsed["object_id"] is None) == (case.task == "background")
        gt = np.load(tmp_path / case.case_id / "ground_truth.npz")
        assert gt["original"].shape == gt["target"].shape == (6, 64, 80, 3)
        assert gt["original"].dtype == gt["target"].dtype == np.uint8
        assert gt["mask"].shape == (6, 64, 80) and gt["mask"].dtype == bool
        assert np.array_equal(gt["target"], case.target)
        assert ("effect_mask" in gt.files) == (case.task in ("remove", "track"))
        first = masks.read_image(str(tmp_path / case.case_id / "edited_first_frame.png"))
        assert np.array_equal(first, case.target[0])  # lossless PNG
        # the video every method propagates is lossless too (up to RGB <-> YUV rounding): a benchmark of propagation
        source = video_decode.decode(str(tmp_path / case.case_id / "original.mp4"))
        assert np.abs(source.astype(int) - case.original.astype(int)).max() <= 2
        import av
        with av.open(str(tmp_path / case.case_id / "target.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == 6


def _layout_ok(root: str, config: WorldConfig, summary: dict) -> None:
    meta = json.loads(storage.read_text(storage.join(root, "meta.json")))["videos"]
    assert sorted(meta) == summary["videos"] == [config.video_id(i) for i in range(config.videos)]
    world = json.loads(storage.read_text(storage.join(root, "world.json")))
    assert world["version"] >= 1 and world["seed"] == config.seed and world["frames"] == config.frames
    for vid, entry in meta.items():
        assert entry["fps"] == "12"
        names = [f"{t:05d}" for t in range(config.frames)]
        assert storage.listdir(storage.join(root, "JPEGImages", vid)) == [n + ".jpg" for n in names]
        assert storage.listdir(storage.join(root, "Annotations", vid)) == [n + ".png" for n in names]
        seen: dict[int, list[str]] = {}
        for n in names:
            ids = masks.read_id_map(storage.join(root, "Annotations", vid, n + ".png"))
            assert ids.shape == (config.height, config.width)
            for k in np.unique(ids[ids > 0]):
                seen.setdefault(int(k), []).append(n)
        assert {int(k): v["frames"] for k, v in entry["objects"].items()} == seen
        assert sorted(storage.listdir(storage.join(root, "Effects", vid))) == sorted(entry["objects"])
        for k in entry["objects"]:
            assert len(storage.listdir(storage.join(root, "Effects", vid, k))) == config.frames
    for case_id in summary["cases"]:
        info = json.loads(storage.read_text(storage.join(root, "cases", case_id, "case.json")))
        assert info["case_id"] == case_id
        for name in info["files"].values():
            assert storage.exists(storage.join(root, "cases", case_id, name))


def _mtimes(root) -> dict[str, int]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.stat(p).st_mtime_ns
    return out


def test_write_world_layout_and_resume(tmp_path):
    root = str(tmp_path / "world")
    summary = write_world(root, SMALL)
    assert summary["written"] == summary["videos"] and not summary["skipped"]
    assert len(summary["cases"]) == SMALL.videos * len(SMALL.tasks)
    _layout_ok(root, SMALL, summary)

    v0, v1 = SMALL.video_id(0), SMALL.video_id(1)
    before = _mtimes(root)
    again = write_world(root, SMALL)
    assert again["skipped"] == [v0, v1] and not again["written"]
    assert again["cases"] == summary["cases"]
    after = _mtimes(root)
    assert {k: v for k, v in after.items() if v0 in k or v1 in k} == \
        {k: v for k, v in before.items() if v0 in k or v1 in k}

    # Half-write v1: no marker, a frame, an annotation and a case's json and target lost.
    os.remove(os.path.join(root, ".done", v1 + ".json"))
    os.remove(os.path.join(root, "JPEGImages", v1, "00003.jpg"))
    os.remove(os.path.join(root, "Annotations", v1, "00005.png"))
    case_dir = os.path.join(root, "cases", f"{v1}_background")
    os.remove(os.path.join(case_dir, "case.json"))
    os.remove(os.path.join(case_dir, "target.mp4"))
    insert_id = next(c for c in summary["cases"] if c.startswith(v1 + "_insert"))
    kept_case = os.path.join("cases", insert_id, "case.json")
    third = write_world(root, SMALL)
    assert third["written"] == [v1] and third["skipped"] == [v0]
    _layout_ok(root, SMALL, third)
    final = _mtimes(root)
    assert {k: v for k, v in final.items() if v0 in k} == {k: v for k, v in before.items() if v0 in k}
    assert final[kept_case] == before[kept_case]  # a finished case is not rewritten
    gt = np.load(os.path.join(case_dir, "ground_truth.npz"))
    assert gt["target"].shape == (SMALL.frames, SMALL.height, SMALL.width, 3)

    # The same seed writes the same frames.
    other = str(tmp_path / "again")
    write_world(other, dataclasses.replace(SMALL, videos=1, tasks=("remove",)))
    a = masks.read_id_map(os.path.join(root, "Annotations", v0, "00002.png"))
    b = masks.read_id_map(os.path.join(other, "Annotations", v0, "00002.png"))
    assert np.array_equal(a, b)


def test_write_world_refuses_other_parameters(tmp_path):
    root = str(tmp_path / "w")
    write_world(root, WorldConfig.tiny(tasks=("remove",)))
    with pytest.raises(ValueError, match="other parameters"):
        write_world(root, WorldConfig.tiny(tasks=("remove",), seed=5))
    # More videos or more tasks extend the world.
    summary = write_world(root, WorldConfig.tiny(videos=2, tasks=("remove", "insert")))
    assert summary["written"] == ["proc_s0_v0000", "proc_s0_v0001"]
    assert len(summary["cases"]) == 4


def test_config_validation():
    with pytest.raises(ValueError):
        WorldConfig(tasks=("remove", "paint"))
    with pytest.raises(ValueError):
        WorldConfig(fps="0")
    assert WorldConfig.tiny().frames == 4 and WorldConfig.tiny().height == 32


def test_write_world_to_s3(s3_bucket):
    url = storage.join(s3_bucket, "world")
    cfg = WorldConfig.tiny()
    summary = write_world(url, cfg)
    _layout_ok(url, cfg, summary)
    assert len(summary["cases"]) == len(TASKS)
    data = storage.read_bytes(storage.join(url, "cases", summary["cases"][0], "ground_truth.npz"))
    gt = np.load(io.BytesIO(data))
    assert gt["original"].shape == (4, 32, 32, 3)
    again = write_world(url, cfg)
    assert again["skipped"] == summary["videos"]
