"""GenProp training on Ray Train: 2 CPU workers on shards made by the shard job, checkpoints on a local S3 endpoint,
resume after a killed worker, export, routing, bad input, and the job as a user submits it."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import tarfile
import time

import pytest
import torch

from genprop import storage
from genprop.models import GenPropModel, load_genprop
from genprop.shards import ShardsConfig
from genprop.tasks import Task
from genprop.training import TrainConfig
from genprop.training.checkpoint import read_ema_weights, read_state_json
from genprop.training.data import collate, decode_training_sample
from genprop.training.job_config import TrainJobConfig
from genprop.training.shard_check import ShardMismatchError, check_shards
from genprop.training.shard_stream import iter_tar_samples, list_shards
from tests.ray_cluster import BIN, copy_project, local_head
from tests.train_helpers import download_tree, make_bucket

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 6


@pytest.fixture(scope="module")
def shards_url(s3_endpoint, ray_local):
    """Shards made by the shard job (tiny config: 4 procedural clips, 2 shards) on the local S3 endpoint."""
    from pipelines.make_shards import make_shards

    bucket = make_bucket(s3_endpoint, "genprop-train-shards")
    summary = make_shards(ShardsConfig.tiny(output=bucket + "/shards"))
    assert summary["samples_out"] == 4 and summary["shards"] == 2, summary
    return bucket + "/shards"


@pytest.fixture(scope="module")
def local_shards(shards_url, tmp_path_factory):
    return download_tree(shards_url, str(tmp_path_factory.mktemp("shards")))


def run_config(output: str, shards: str, **kw) -> TrainJobConfig:
    return TrainJobConfig.tiny(shards=shards, output=output, train=TrainConfig.tiny(max_steps=STEPS),
                               checkpoint_every=2, keep_checkpoints=2, validate_every=2, **kw)


@pytest.fixture(scope="module")
def reference_run(shards_url, s3_endpoint):
    """An uninterrupted 2-worker run of STEPS steps with checkpoints and output on S3."""
    from pipelines.train import train

    out = make_bucket(s3_endpoint, "genprop-train-run") + "/run"
    summary = train(run_config(out, shards_url))
    return out, summary


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_workers_train_checkpoint_to_s3_and_export(reference_run, tmp_path):
    out, summary = reference_run
    assert summary["steps"] == STEPS and summary["checkpoint"] == out + "/checkpoints/checkpoint-000006"
    # 1. the last K=2 checkpoints kept on S3, each with its validation strip beside it
    names = [n for n in storage.listdir(out + "/checkpoints") if n.startswith("checkpoint-")]
    assert names == ["checkpoint-000004", "checkpoint-000006"], names
    ckpt = download_tree(summary["checkpoint"], str(tmp_path / "ckpt"))
    assert {"trainable.safetensors", "ema.safetensors", "optimizer.pt", "state.json",
            "validation.png", "validation.json"} <= set(os.listdir(ckpt))
    state = read_state_json(ckpt)
    assert state["step"] == STEPS and state["data"] == {"samples": 2 * STEPS, "skipped": 0}  # global batch 2
    # 2. only trainable parameters in the GenProp checkpoint
    from safetensors import safe_open

    with safe_open(os.path.join(ckpt, "trainable.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("backbone.") for k in keys)
    # 3. metrics every step with every loss term
    lines = [json.loads(x) for x in storage.read_text(out + "/metrics.jsonl").splitlines()]
    assert [m["step"] for m in lines] == list(range(1, STEPS + 1))
    for k in ("loss", "non_mask", "mask", "grad", "mpd", "lr", "grad_norm", "samples_per_s", "data_wait_frac"):
        assert all(k in m for m in lines), k
    assert "val_psnr" in lines[1] and storage.exists(out + "/validation/step-000002.png")
    # 4. the exported model loads and reproduces the run's EMA outputs; its backbone is the untouched one
    model_dir = download_tree(out + "/model", str(tmp_path / "model"))
    exported = load_genprop(model_dir).eval()
    ema = read_ema_weights(ckpt)
    fresh = GenPropModel(exported.config).eval()
    for k, v in fresh.backbone.state_dict().items():
        assert torch.equal(v, exported.backbone.state_dict()[k]), k
    fresh.load_state_dict(ema, strict=False)
    sample = next(iter_tar_samples(list_shards(summary_shards(out))[0]))
    batch = collate([decode_training_sample(sample)])
    t = torch.full((1,), 500.0)
    with torch.no_grad():
        a = exported(batch["target_latents"], t, batch["cond"], batch["sce_latents"], batch["task_id"]).prediction
        b = fresh(batch["target_latents"], t, batch["cond"], batch["sce_latents"], batch["task_id"]).prediction
    assert torch.equal(a, b)
    assert not torch.equal(exported.trainable_state_dict()[keys[0]], GenPropModel(exported.config)
                           .trainable_state_dict()[keys[0]])  # it did train


def summary_shards(out: str) -> str:
    return json.loads(storage.read_text(out + "/train_config.json"))["shards"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_i2v_objective_through_the_job_exports_a_loadable_backbone(shards_url, tmp_path):
    from genprop.models.backbones.export import load_backbone
    from pipelines.train import train

    out = str(tmp_path / "run")
    job = run_config(out, shards_url)
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, objective="i2v", max_steps=2),
                              validate_every=2)
    summary = train(job)
    assert summary["steps"] == 2
    backbone = load_backbone(out + "/model")
    ema = read_ema_weights(out + "/checkpoints/checkpoint-000002")
    state = backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ema.items())


@pytest.mark.timeout(600)
def test_a_non_finite_loss_is_not_retried_and_names_the_step(local_shards, tmp_path):
    """Retrying from the last checkpoint would meet the same NaN: the job raises NonFiniteLossError at once."""
    from genprop.training.objectives import NonFiniteLossError
    from pipelines.train import train

    job = run_config(str(tmp_path / "run"), local_shards)
    job = dataclasses.replace(job, max_failures=3, validate_every=0,
                              train=dataclasses.replace(job.train, lr=1e30))  # weights blow up after one step
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step \d+ on samples \['"):
        train(job)
    # the failing worker left the record the driver raised from
    marker = json.load(open(tmp_path / "run" / "NONFINITE_LOSS.json"))
    assert marker["step"] >= 1 and marker["keys"]


# ------------------------------------------------------------------------------------------------ routing
@pytest.mark.timeout(300)
def test_each_task_reaches_the_model_as_the_shard_table_says(local_shards):
    """SCE input -> E, G's frame (the target's first frame) -> G, loss against the target, for every task."""
    from genprop.models import GenPropConfig
    from genprop.training import Trainer

    shard_set = check_shards(local_shards)
    model = GenPropModel(GenPropConfig(backbone=shard_set.config.backbone_config(), sce_blocks=1, task_dim=16))
    samples = [decode_training_sample(s) for url in list_shards(local_shards) for s in iter_tar_samples(url)]
    assert len({s["meta"]["task"] for s in samples}) >= 2  # the tiny shards hold mask-and-fill and colour fill
    seen = {}
    bb = model.backbone
    orig_sample, orig_forward = bb.training_sample, GenPropModel.forward

    def spy_sample(latents, generator=None):
        seen["noised"] = latents.clone()
        return orig_sample(latents, generator)

    def spy_forward(self, model_input, timestep, cond, sce_latents, task_ids, **kw):
        seen.update(cond=cond, sce=sce_latents, tasks=task_ids)
        return orig_forward(self, model_input, timestep, cond, sce_latents, task_ids, **kw)

    bb.training_sample = spy_sample
    GenPropModel.forward = spy_forward
    try:
        trainer = Trainer(model, TrainConfig.tiny(cond_drop_prob=0.0, loss=dataclasses.replace(
            TrainConfig().loss, task_drop_prob=0.0)))
        for s in samples:
            batch = collate([s])
            trainer.train_step([batch])
            # the noised latents are the target's; the SCE sees the shard's SCE input; G the target's first frame
            torch.testing.assert_close(seen["noised"], torch.from_numpy(s["target_latents"]).float()[None])
            torch.testing.assert_close(seen["sce"], torch.from_numpy(s["sce_latents"]).float()[None])
            first = bb.latent_map.encode(torch.from_numpy(s["cond_frame"]).permute(2, 0, 1)[None, None].float()
                                         / 127.5 - 1)[0, 0]
            torch.testing.assert_close(seen["noised"][0, 0], first, atol=2e-3, rtol=0)  # fp16 latents
            torch.testing.assert_close(seen["cond"]["condition"][0, 0, 1:], first, atol=2e-3, rtol=0)
            assert int(seen["tasks"][0]) == s["task_id"] == s["meta"]["task_id"]
            inside = torch.from_numpy(s["mask"]).any()
            differs = not torch.equal(seen["sce"], seen["noised"])
            assert differs == bool(inside), s["key"]  # the edit is what separates E's input from G's target
            if s["meta"]["task_id"] == Task.COLOUR_FILL:
                assert s["prompt"] == "track colored regions"
    finally:
        GenPropModel.forward = orig_forward


# ------------------------------------------------------------------------------------------------ bad input
def test_no_shards_at_the_url_is_a_clear_error(tmp_path, capsys):
    from jobs.train import main

    assert main(["--config", "tiny.yaml", "--shards", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 2
    assert "no training shards" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_a_shard_that_cannot_be_indexed_fails_on_the_driver_naming_it(local_shards, tmp_path, capsys):
    import shutil

    from jobs.train import main

    bad = tmp_path / "shards"
    shutil.copytree(local_shards.replace("file://", ""), bad)
    first = list_shards(str(bad))[0].replace("file://", "")  # a training shard (the last is validation's)
    with open(first, "wb") as f:
        f.write(b"not a tar" * 200)
    name = os.path.basename(first)
    os.remove(os.path.join(bad, "_manifest", name.replace(".tar", ".parquet")))  # the index reads the tar
    assert main(["--config", "tiny.yaml", "--shards", str(bad), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert name in err and "training failed" not in err
    assert not (tmp_path / "o" / "checkpoints").exists()  # no worker started


@pytest.mark.timeout(300)
def test_shards_for_another_backbone_or_shape_are_refused(local_shards):
    made = check_shards(local_shards).config
    with pytest.raises(ShardMismatchError, match="shards were made for a wan backbone"):
        check_shards(local_shards, dataclasses.replace(made, backbone_kind="svd", backbone={"tiny": {}}))
    with pytest.raises(ShardMismatchError, match="13 frames"):
        check_shards(local_shards, dataclasses.replace(made, frames=13))
    assert check_shards(local_shards, made).latent_shape == (9, 48, 8, 8)


@pytest.mark.timeout(300)
def test_the_index_comes_from_the_manifest_and_a_corrupt_sample_is_skipped_and_counted(local_shards, tmp_path):
    from genprop.errors import DataError
    from genprop.training.global_batches import BatchLayout, GlobalBatchReader
    from genprop.training.sample_index import index_from_tar_headers, index_shards, read_sample

    shards = list_shards(local_shards)
    refs = index_shards(shards)  # from the manifest parts: no tar read
    assert refs == [r for url in shards for r in index_from_tar_headers(url)]
    assert [read_sample(r) for r in refs] == [s for url in shards for s in iter_tar_samples(url)]
    with open(shards[0].replace("file://", ""), "rb") as f:
        data = bytearray(f.read())
    # garble the payload of the first sample's target latents (the tar headers stay intact)
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        info = next(m for m in tar.getmembers() if m.name.endswith(".target_latents.npy"))
    data[info.offset_data:info.offset_data + 16] = b"\0" * 16
    bad = tmp_path / "bad" / "shards"
    bad.mkdir(parents=True)
    (bad / "shard-000000.tar").write_bytes(bytes(data))
    bad_refs = [dataclasses.replace(r, shard=str(bad / "shard-000000.tar")) for r in refs if r.shard == shards[0]]
    reader = GlobalBatchReader(bad_refs, 0, BatchLayout(1, 1, 1), 0, decode_training_sample, collate)
    try:
        keys = [reader.next()[0]["keys"][0] for _ in range(2 * len(bad_refs))]
    finally:
        reader.close()
    key = info.name.split(".")[0]
    assert key not in keys and reader.skipped == 1 and key in reader.skip_reasons[0]
    # a truncated tar: the cut sample is a DataError naming it
    (bad / "shard-000000.tar").write_bytes(bytes(data[: info.offset_data + 100]))
    with pytest.raises(DataError, match=f"sample {key}"):
        read_sample(bad_refs[0])


# ------------------------------------------------------------------------------------------------ as a user
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_job_submit_trains_on_a_local_head(local_shards, tmp_path):
    work = copy_project(REPO, tmp_path / "job")
    out = str(tmp_path / "run")
    with local_head() as (address, env):
        submit = [os.path.join(BIN, "ray"), "job", "submit", "--address", address, "--working-dir", work, "--",
                  "python", "-m", "jobs.train", "--config", "tiny.yaml", "--shards", local_shards, "--output", out,
                  "--max-steps", "2", "--num-workers", "2"]
        t0 = time.monotonic()
        res = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=540)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "train: 2 steps" in res.stdout, res.stdout[-3000:]
        print(f"ray job submit (train) took {time.monotonic() - t0:.1f} s")
    assert GenPropModel.from_pretrained(out + "/model") is not None
    assert json.loads(storage.read_text(out + "/_SUCCESS"))["steps"] == 2
