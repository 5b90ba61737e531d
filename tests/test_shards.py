"""Training shards: keys, deterministic tars, plan, manifest, resume; end to end on local Ray with S3."""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile

import numpy as np
import pytest
import torch

from genprop import storage
from genprop.shards import (ConfigMismatchError, ShardOutput, ShardsConfig, ShardWriter, config_hash, decode_sample,
                            plan_samples, read_manifest, sample_key, sample_tar_bytes)
from genprop.shards.sample import pack_mask, unpack_mask
from genprop.shards.tar_writer import read_tar_members
from genprop.tasks import AUGMENTATION_TASKS, Task
from tests.conftest import upload_tree
from tests.shards_helpers import BAD_VIDEOS, list_objects, read_all, write_world_with_bad_videos


# ------------------------------------------------------------------------------------------------ units
def test_sample_key_is_stable_and_dot_free():
    k = sample_key("youtube-vos", "abc", 3, 12, Task.MASK_FILL.augmentation)
    assert k == "youtube-vos_abc_o3_f000012_mask_fill"
    paste = Task.COPY_PASTE.augmentation
    dotted = sample_key("sav", "sav_000.1", 1, 0, paste)
    assert "." not in dotted and dotted == sample_key("sav", "sav_000.1", 1, 0, paste)
    assert dotted != sample_key("sav", "sav_000-1", 1, 0, paste)  # sanitising cannot collide


def test_sample_tar_has_fixed_metadata_and_sorted_members(tmp_path):
    members = {"meta.json": b"{}", "a.npy": b"x" * 700, "task.cls": b"1"}
    blocks = sample_tar_bytes("k1", members)
    assert blocks == sample_tar_bytes("k1", dict(reversed(list(members.items()))))
    url = str(tmp_path / "s.tar")
    with ShardWriter(url) as w:
        w.add(blocks)
        w.add(sample_tar_bytes("k2", {"meta.json": b"[]"}))
        w.commit()
    data = open(url, "rb").read()
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(url) as tar:
        infos = tar.getmembers()
    assert [m.name for m in infos] == ["k1.a.npy", "k1.meta.json", "k1.task.cls", "k2.meta.json"]
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644) for m in infos)
    # the same as tarfile itself writes for the same members
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m, (_, payload) in zip(infos, read_tar_members(data)):
            tar.addfile(m, io.BytesIO(payload))
    assert buf.getvalue() == data
    with pytest.raises(ValueError, match="must not contain"):
        sample_tar_bytes("a.b", members)


def test_an_unfinished_shard_is_never_visible(tmp_path):
    url = str(tmp_path / "shards" / "shard-000000.tar")
    with pytest.raises(RuntimeError):
        with ShardWriter(url, tmp_dir=str(tmp_path)) as w:
            w.add(sample_tar_bytes("k", {"x.txt": b"1"}))
            raise RuntimeError("worker died")
    assert not os.path.exists(url) and not list(tmp_path.glob("genprop-shard-*"))


def test_mask_packing_round_trips():
    m = np.random.default_rng(0).random((3, 5, 13)) > 0.5
    assert np.array_equal(unpack_mask(pack_mask(m), 13), m)


def test_config_hash_ignores_execution_fields_and_tracks_content():
    a = ShardsConfig.tiny(input="s3://b/x", output="s3://b/o1")
    assert config_hash(a) == config_hash(dataclasses.replace(a, output="s3://b/o2", encode_actors=3, batch_size=7,
                                                             fail_after_shards=1, kill_encoder_after_samples=2))
    assert config_hash(a) != config_hash(dataclasses.replace(a, seed=1))
    assert config_hash(a) != config_hash(dataclasses.replace(a, limit=2))


def test_wan_vae_needs_t_1_mod_4():
    with pytest.raises(ValueError, match="1 \\(mod 4\\)"):
        ShardsConfig(frames=8, backbone={"tiny": {"latent_map": "vae"}})
    ShardsConfig(frames=9, backbone={"tiny": {"latent_map": "vae"}})


def _listing(n, frames=9):
    return [{"source": "youtube-vos", "video_id": f"v{i:03d}", "status": "ok", "reason": "", "num_frames": frames,
             "height": 32, "width": 32, "fps": "12", "object_ids": [1, 2], "starts": list(range(frames - 8))}
            for i in range(n)]


def test_plan_depends_only_on_sorted_inputs_and_seed():
    config = ShardsConfig.tiny(clips_per_video=2)
    rows = _listing(12, frames=20)
    a = plan_samples(rows, config, 3)
    b = plan_samples(list(reversed(rows)), config, 3)
    assert a == b and len(a) == 24
    assert [(p.shard, p.position) for p in a] == [(i // 3, i % 3) for i in range(24)]
    c = plan_samples(rows, dataclasses.replace(config, seed=5), 3)
    assert [p.seed for p in a] != [p.seed for p in c]
    # a video's samples do not change when another video joins the dataset (seeds per video id)
    more = plan_samples(rows + _listing(13, frames=20)[12:], config, 3)
    assert [(p.video_id, p.start, p.task, p.seed) for p in more[:24]] == [(p.video_id, p.start, p.task, p.seed)
                                                                         for p in a]


def test_output_refuses_another_config(tmp_path):
    out = ShardOutput(str(tmp_path / "o"))
    config = ShardsConfig.tiny(input="x", output=out.url)
    h = out.claim(config)
    assert out.claim(dataclasses.replace(config, batch_size=9)) == h  # execution-only change: same output
    with pytest.raises(ConfigMismatchError, match="another output"):
        out.claim(dataclasses.replace(config, seed=3))


@pytest.mark.parametrize("task", AUGMENTATION_TASKS)
def test_an_encoded_sample_trains_genprop_with_no_encoder(tmp_path, task):
    """Members decode to exactly what GenPropModel.forward + region_aware_loss take; routing is kept."""
    from genprop.datasets.procedural import WorldConfig, write_world
    from genprop.datasets import open_dataset
    from genprop.losses import loss_masks, region_aware_loss
    from genprop.models import GenPropConfig, GenPropModel
    from genprop.shards.clip import make_planned_pair
    from genprop.shards.encode import SampleEncoder
    from genprop.shards.plan import describe_video

    write_world(str(tmp_path / "w"), WorldConfig(videos=2, frames=9, height=32, width=32, tasks=()))
    config = ShardsConfig.tiny(input=str(tmp_path / "w"), output=str(tmp_path / "o"))
    ds = open_dataset(config.input)
    rows = [describe_video(ds, v, config) for v in ds.videos()]
    row = next(p for p in plan_samples(rows, config, 2) if True).to_row()
    row.update(task=task.augmentation, prompt="track colored regions" if task == Task.COLOUR_FILL else "")
    pair = make_planned_pair(row, ds, config)
    enc = SampleEncoder(config)
    key, blocks = enc.encode(pair, row)
    sample = {"__key__": key}
    for name, data in read_tar_members(blocks + b"\0" * 1024):
        assert name.startswith(key + ".")
        sample[name[len(key) + 1:]] = data
    s = decode_sample(sample)
    assert s["task_id"] == pair.task_id and s["prompt"] == pair.prompt and s["meta"]["task"] == task.augmentation
    assert np.array_equal(s["mask"], pair.mask) and np.array_equal(s["cond_frame"], pair.target_video[0])
    bb = enc.backbone
    with torch.no_grad():
        want_sce = bb.encode_video((torch.from_numpy(pair.sce_video).permute(0, 3, 1, 2).float() / 127.5 - 1)[None])
        want_tgt = bb.encode_video((torch.from_numpy(pair.target_video).permute(0, 3, 1, 2).float() / 127.5 - 1)[None])
    assert torch.allclose(torch.from_numpy(s["sce_latents"]).float(), want_sce[0], atol=1e-2)
    assert torch.allclose(torch.from_numpy(s["target_latents"]).float(), want_tgt[0], atol=1e-2)
    # the training step, from the sample alone
    model = GenPropModel(GenPropConfig(backbone=config.backbone_config(), sce_blocks=1, task_dim=16), backbone=bb)
    target = torch.from_numpy(s["target_latents"]).float()[None]
    ts = bb.training_sample(target, generator=torch.Generator().manual_seed(0))
    cond = {k: torch.from_numpy(v).float()[None] for k, v in s["condition"].items()}
    out = model(ts.model_input, ts.timestep, cond, torch.from_numpy(s["sce_latents"]).float()[None],
                torch.tensor([s["task_id"]]), perturb_mask=torch.from_numpy(s["latent_mask"]).float()[None],
                perturb_delta=1e-2, num_frames=9)
    # the MPD's target at its own resolution from the sample's mask, as the objective makes it
    mpd_target = loss_masks(torch.from_numpy(s["mask"]).float()[None], bb.latent_map, target.shape[1],
                            model.mpd.scale)[1]
    losses = region_aware_loss(out, ts.target, torch.from_numpy(s["latent_mask"]).float()[None], mpd_target)
    assert torch.isfinite(losses["loss"]) if "loss" in losses else all(torch.isfinite(v) for v in losses.values())


# ------------------------------------------------------------------------------------------ end to end
def _run(config):
    from pipelines.make_shards import make_shards

    return make_shards(config)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_end_to_end_on_local_ray_and_s3(ray_local, s3_bucket, tmp_path):
    import webdataset as wds
    import pyarrow.fs as pafs

    world = write_world_with_bad_videos(str(tmp_path / "world"))
    upload_tree(world, s3_bucket + "/world")
    base = ShardsConfig.tiny(input=s3_bucket + "/world", samples_per_shard=1)
    a = dataclasses.replace(base, output=s3_bucket + "/a")

    # 1. an uninterrupted run
    summary = _run(a)
    assert summary["videos_in"] == 5 and summary["shards"] == summary["samples_planned"] == 3
    assert summary["samples_out"] >= 1 and summary["samples_failed"] == 0
    # the summary's counts are its problems' (every row that is not ok, with its video id and whole reason)
    problems = summary["problems"]
    assert summary["videos_skipped"] == len(BAD_VIDEOS) == sum(p["kind"] == "video" for p in problems)
    assert len(problems) == (summary["videos_skipped"] + summary["samples_skipped"] + summary["samples_failed"]
                             + summary["donors_replaced"])
    assert {p["video_id"] for p in problems if p["kind"] == "video"} == set(BAD_VIDEOS)
    assert any("00004.jpg" in p["reason"] for p in problems)  # the whole reason, file name included
    manifest = read_manifest(storage.read_bytes(a.output + "/manifest.parquet")).to_pylist()
    videos = {r["video_id"]: r for r in manifest if r["kind"] == "video"}
    assert {v: videos[v]["status"] for v in BAD_VIDEOS} == {v: "skipped" for v in BAD_VIDEOS}
    assert "00004.jpg" in videos["proc_s0_v0002"]["reason"]
    assert "shorter than T" in videos["proc_s0_v0004"]["reason"]
    assert videos["proc_s0_v0003"]["reason"]
    assert storage.exists(a.output + "/_SUCCESS")

    # 2. webdataset and Ray Data read every sample back with the expected members and shapes
    shards = sorted(u for u in list_objects(a.output) if u.startswith("shards/"))
    assert shards == [f"shards/shard-{i:06d}.tar" for i in range(3)]
    local = tmp_path / "dl"
    local.mkdir()
    for name, data in read_all(a.output + "/shards").items():
        (local / name).write_bytes(data)
    wds_samples = list(wds.WebDataset(sorted(str(p) for p in local.glob("*.tar")), shardshuffle=False))
    ok = [r for r in manifest if r["kind"] == "sample" and r["status"] == "ok"]
    assert sorted(s["__key__"] for s in wds_samples) == sorted(r["key"] for r in ok)
    expected = {"sce_latents.npy", "target_latents.npy", "cond_frame.png", "cond_latents.npy", "mask.npy",
                "latent_mask.npy", "mpd_target.npy", "task.cls", "prompt.txt", "meta.json", "cond_condition.npy",
                "cond_prompt_embeds.npy", "cond_negative_prompt_embeds.npy", "cond_image_embeds.npy"}
    for raw in wds_samples:
        assert expected <= set(raw)
        s = decode_sample({k: v for k, v in raw.items() if k not in ("__url__", "__local_path__")})
        assert s["sce_latents"].shape == s["target_latents"].shape == (9, 48, 8, 8)
        assert s["sce_latents"].dtype == np.float16 and s["mask"].shape == (9, 32, 32)
        assert s["latent_mask"].shape == (9, 1, 8, 8) and s["mpd_target"].shape == (9, 8, 8)
        assert s["condition"]["condition"].shape == (9, 49, 8, 8) and s["cond_frame"].shape == (32, 32, 3)
    fs, _ = storage.filesystem(a.output)
    ray_ds = ray_local.data.read_webdataset([(a.output + "/" + u)[len("s3://"):] for u in shards],
                                            filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(fs)), decoder=None)
    rows = ray_ds.take_all()
    assert sorted(r["__key__"] for r in rows) == sorted(r["key"] for r in ok)
    assert all("sce_latents.npy" in r or "sce_latents" in r for r in rows)

    # 3. a second run writes nothing
    before = list_objects(a.output)
    again = _run(a)
    assert again["shards_written"] == 0 and list_objects(a.output) == before

    # 4. failed on purpose after 1 shard, then rerun: byte-identical shards and the same manifest
    b = dataclasses.replace(base, output=s3_bucket + "/b", fail_after_shards=1)
    from pipelines.make_shards import InjectedFailure

    with pytest.raises(InjectedFailure):
        _run(b)
    partial = list_objects(b.output)
    assert [u for u in partial if u.startswith("shards/")] == ["shards/shard-000000.tar"]
    assert "_SUCCESS" not in partial and "manifest.parquet" not in partial
    resumed = _run(dataclasses.replace(b, fail_after_shards=None))
    assert resumed["shards_written"] == 2
    got, want = read_all(b.output), read_all(a.output)
    for name in shards + [f"_manifest/shard-{i:06d}.parquet" for i in range(3)] + ["manifest.parquet"]:
        assert got[name] == want[name], name

    # 5. another config is refused, not mixed in
    with pytest.raises(ConfigMismatchError):
        _run(dataclasses.replace(a, seed=1))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_dying_mid_shard_publishes_nothing_partial_and_a_rerun_completes_the_set(ray_local, tmp_path):
    """The encoding actor's worker process dies (``os._exit``) while the driver has a shard half written.

    Ray may restart the actor and finish the job, or the job may fail; either way no shard is ever visible
    unless complete (a thread watches the output during the run), and a rerun leaves the set byte-identical
    to an uninterrupted run's.
    """
    import re
    import threading

    from genprop.datasets.procedural import WorldConfig, write_world

    world = str(tmp_path / "world")
    write_world(world, WorldConfig(videos=4, frames=9, height=32, width=32, tasks=()))
    # 4 samples in 2 shards of 2, one sample per actor call
    base = ShardsConfig.tiny(input=world, samples_per_shard=2, batch_size=1)
    a = dataclasses.replace(base, output=str(tmp_path / "a"))
    assert _run(a)["shards"] == 2
    want = read_all(a.output)
    names = [f"shards/shard-{i:06d}.tar" for i in range(2)] + [f"_manifest/shard-{i:06d}.parquet" for i in range(2)]
    assert set(names) <= set(want)

    # the actor dies when handed the 4th sample: shard 0 is published, shard 1 holds one sample in the driver
    b = dataclasses.replace(base, output=str(tmp_path / "b"), kill_encoder_after_samples=3)
    seen, bad, stop = set(), [], threading.Event()

    def watch():
        while True:
            done = stop.is_set()
            for sub in ("shards", "_manifest"):
                folder = os.path.join(b.output, sub)
                for name in os.listdir(folder) if os.path.isdir(folder) else ():
                    if not re.fullmatch(r"shard-\d{6}\.(tar|parquet)", name):
                        continue  # storage's temporaries beside a target, renamed into place when complete
                    key = f"{sub}/{name}"
                    try:
                        with open(os.path.join(folder, name), "rb") as f:
                            data = f.read()
                    except FileNotFoundError:
                        continue
                    seen.add(key)
                    if data != want.get(key):
                        bad.append((key, len(data)))
            if done:
                return
            stop.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        first = _run(b)
    except Exception as e:  # noqa: BLE001 - the job may fail with the worker: the rerun must complete the set
        first = {"error": repr(e)}
    finally:
        stop.set()
        watcher.join()
    exits = os.listdir(os.path.join(b.output, "_test_hook"))
    assert exits, "the encoding actor's worker never exited"
    assert not bad, f"a partial or wrong shard was visible: {bad}"
    assert "shards/shard-000000.tar" in seen
    resumed = _run(dataclasses.replace(b, kill_encoder_after_samples=None))
    assert resumed["shards"] == 2 and storage.exists(b.output + "/_SUCCESS")
    got = read_all(b.output)
    for name in names + ["manifest.parquet"]:
        assert got[name] == want[name], (name, first)
    print(f"worker exits: {len(exits)}; first run: {'completed' if 'error' not in first else first['error'][:200]}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_encoding_actors_write_the_same_bytes_as_one(ray_local, tmp_path):
    """The pool size is an execution setting: more actors (one per core or GPU) change neither the shards nor the
    manifest, byte for byte, so a job may be resumed with another pool size."""
    from genprop.datasets.procedural import WorldConfig, write_world

    world = str(tmp_path / "world")
    write_world(world, WorldConfig(videos=4, frames=9, height=32, width=32, tasks=()))
    base = ShardsConfig.tiny(input=world, samples_per_shard=2, batch_size=1)
    one = _run(dataclasses.replace(base, output=str(tmp_path / "one")))
    two = _run(dataclasses.replace(base, output=str(tmp_path / "two"), encode_actors=2))
    assert one["shards"] == two["shards"] == 2 and one["config_hash"] == two["config_hash"]
    got, want = read_all(str(tmp_path / "two")), read_all(str(tmp_path / "one"))
    names = [n for n in want if n.startswith(("shards/", "_manifest/")) or n == "manifest.parquet"]
    assert len(names) == 5 and all(got[n] == want[n] for n in names)
