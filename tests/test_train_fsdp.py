"""FSDP across processes, through ``genprop train`` on shards made by the shard job (gloo on CPU): two workers
compute what one computes on the same global batch, a control with the gradient exchange switched off is caught
by the same comparison, and a group whose worker is killed resumes to the weights of an uninterrupted run.

FSDP2's warning that a wrapped unit returned a view (an in-place op on it would skip the all-gather and give wrong
gradients) is an error in an FSDP worker (``pipelines.train_worker``), so these runs fail if it comes back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import pytest
import torch

from genprop import storage
from genprop.shards import ShardsConfig
from tests.train_helpers import download_tree

STEPS = 6


def run_yaml(path: str, gradient_sync: bool = True) -> str:
    """A train config as a user writes one: the tiny settings with ``strategy: fsdp`` and a fixed global batch.

    ``adam_eps: 1e-6``: the tiny SVD's GroupNorms have one channel per group, which removes the biases and time
    projections before them, so their gradients are zero in exact arithmetic and ~1e-8 in fp32; Adam normalises that
    noise into lr-sized steps that differ with the summation order (2.4e-3 of the weights' movement at the default
    1e-8, with every loss equal to 1e-5), which a larger epsilon keeps still.
    """
    with open(path, "w") as f:
        f.write(f"""train:
  train: {{objective: genprop, lr: 0.001, warmup_steps: 2, max_steps: {STEPS}, grad_clip: 1.0, ema_decay: 0.9,
          cond_drop_prob: 0.5, seed: 0, loss: {{task_drop_prob: 0.5}}, adam_eps: 1.0e-6}}
  model: {{sce_blocks: 1, task_dim: 16, seed: 0}}
  global_batch_size: 2
  strategy: fsdp
  gradient_sync: {str(gradient_sync).lower()}
  cpus_per_worker: 0.5
  checkpoint_every: 2
  keep_checkpoints: 3
  max_failures: 1
  validate_every: 0
""")
    return path


def make_tiny_shards(kind: str, out: str) -> str:
    """Tiny shards of the backbone (6 procedural clips, 3 shards: 4 samples to train on, 2 a step)."""
    from pipelines.make_shards import make_shards

    base = ShardsConfig.tiny()
    backbone = base.backbone if kind == "wan" else {"tiny": {}}
    make_shards(ShardsConfig.tiny(output=out, backbone_kind=kind, backbone=backbone,
                                  world=dataclasses.replace(base.world, videos=6)))
    return out


def genprop_train(config: str, shards: str, out: str, workers: int) -> dict:
    """``genprop train`` in this process (the test session's Ray runtime); the run's per-step metrics."""
    from jobs.cli import main

    assert main(["train", "--config", config, "--shards", shards, "--output", out,
                 "--num-workers", str(workers)]) == 0
    return {m["step"]: m for m in map(json.loads, storage.read_text(out + "/metrics.jsonl").splitlines())}


def trained_weights(model_dir: str) -> dict:
    from genprop.models import load_genprop

    return load_genprop(model_dir).trainable_state_dict()


def distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a))


@pytest.fixture(scope="module")
def fsdp_runs(ray_local, tmp_path_factory):
    """``fsdp_runs(kind)``: shards of the backbone, then 1 worker, 2 workers, and (Wan: the control is the same code
    for either backbone) 2 workers without gradient synchronisation, on the same global batch of 2 (each made once
    per test module)."""
    done: dict = {}

    def get(kind: str) -> dict:
        if kind not in done:
            tmp = tmp_path_factory.mktemp(f"fsdp-{kind}")
            shards = make_tiny_shards(kind, str(tmp / "shards"))
            runs = {"shards": shards}
            for name, workers, sync in (("one", 1, True), ("two", 2, True), ("no_sync", 2, False))[:3 if kind == "wan"
                                                                                                   else 2]:
                runs[name] = str(tmp / name)
                runs[name + "_metrics"] = genprop_train(run_yaml(str(tmp / f"{name}.yaml"), sync), shards,
                                                        runs[name], workers)
            done[kind] = runs
        return done[kind]

    return get


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["wan", "svd"])
def test_two_fsdp_workers_compute_what_one_computes_and_a_missing_sync_is_caught(fsdp_runs, kind):
    from genprop.models import GenPropModel, load_genprop

    runs = fsdp_runs(kind)
    one, two = runs["one_metrics"], runs["two_metrics"]
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    for step in one:  # every step's loss (the mean over the global batch) to 1e-5 relative
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5), step
    # the exported EMA weights: 2 workers within 1e-3 of how far 1 worker moved them; the control far outside
    w1, w2 = (trained_weights(runs[k] + "/model") for k in ("one", "two"))
    w0 = GenPropModel(load_genprop(runs["one"] + "/model").config).trainable_state_dict()  # as built: seeded
    moved = distance(w1, w0)
    assert moved > 0
    assert distance(w2, w1) < 1e-3 * moved, (distance(w2, w1), moved)
    if kind == "wan":
        wn, no_sync = trained_weights(runs["no_sync"] + "/model"), runs["no_sync_metrics"]
        assert distance(wn, w1) > 10 * 1e-3 * moved, (distance(wn, w1), moved)
        assert any(no_sync[s]["loss"] != pytest.approx(one[s]["loss"], rel=1e-5) for s in one)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_fsdp_worker_resumes_to_the_weights_of_the_uninterrupted_run(fsdp_runs, tmp_path):
    """Worker 1 dies after step 3; Ray restarts the group from checkpoint 2 (whole tensors, resharded on load);
    the run ends where the uninterrupted 2-worker run ended: weights, EMA and AdamW's moments."""
    from safetensors.torch import load_file

    from genprop.training.job_config import TrainJobConfig
    from jobs.common import load_section
    from pipelines.train import train

    runs = fsdp_runs("wan")
    marker = str(tmp_path / "killed")

    def kill_worker_1_once(step: int, rank: int) -> None:  # runs in the workers: die once, like a lost node
        if step == 3 and rank == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)

    job = load_section(TrainJobConfig, run_yaml(str(tmp_path / "run.yaml")), "train",
                       overrides={"shards": runs["shards"], "output": str(tmp_path / "run"), "num_workers": 2})
    assert job.strategy == "fsdp"
    summary = train(job, after_step=kill_worker_1_once)
    assert os.path.exists(marker) and summary["steps"] == STEPS
    steps = [json.loads(x)["step"] for x in storage.read_text(str(tmp_path / "run" / "metrics.jsonl")).splitlines()]
    assert steps == list(range(1, STEPS + 1))  # step 3 redone from checkpoint 2, once
    ref = download_tree(f"{runs['two']}/checkpoints/checkpoint-{STEPS:06d}", str(tmp_path / "ref"))
    got = download_tree(f"{tmp_path}/run/checkpoints/checkpoint-{STEPS:06d}", str(tmp_path / "got"))
    for name in ("trainable.safetensors", "ema.safetensors"):
        a, b = load_file(os.path.join(ref, name)), load_file(os.path.join(got, name))
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6)
    opt_a = torch.load(os.path.join(ref, "optimizer.pt"), weights_only=True)
    opt_b = torch.load(os.path.join(got, "optimizer.pt"), weights_only=True)
    assert opt_a["state"] and opt_a["state"].keys() == opt_b["state"].keys()
    for i, state in opt_a["state"].items():
        for k in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(opt_b["state"][i][k], state[k], rtol=0, atol=1e-9)
