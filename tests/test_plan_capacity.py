"""The capacity plan (bench/plan_capacity.py) on the real configs: invariants its tables must keep."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import plan_capacity  # noqa: E402
from capacity_model import GPU_COUNTS, STRATEGIES  # noqa: E402


@pytest.fixture(scope="module")
def plan():
    # real-size Wan2.1 I2V 14B / SVD-XT configs on the meta device; activation coefficients from a reduced set of
    # scaled-down blocks; no real-size whole-step counts, SVD or shard job (quick)
    return plan_capacity.plan(quick=True)


def _total(plan, key, strategy, n):
    return plan["wan_memory"][key][f"{strategy}/{n}"]["total"]


def test_real_configs_from_the_meta_device(plan):
    wan, svd = plan["wan"], plan["svd"]
    assert wan["sce_blocks"] == 10 and svd["sce_blocks"] == 2  # the default SCE depth the code builds
    assert 16e9 < wan["backbone"] < 17e9 and 1.4e9 < svd["backbone"] < 1.6e9
    assert wan["trainable"] == pytest.approx(wan["sce"] + wan["mpd"], rel=1e-3)
    assert plan["deployment"]["wan"]["frames"] == 49 and plan["deployment"]["wan"]["checkpointing"]


def test_sharding_the_backbone_uses_less_memory_than_replicating_it(plan):
    for key in plan["wan_memory"]:
        for n in GPU_COUNTS:
            assert _total(plan, key, "sharded", n) < _total(plan, key, "replicated", n), (key, n)
    # an FSDP unit per SCE block (what shard_model does) holds less at the peak than the whole SCE as one unit
    for frames in (49, 81):
        assert plan["levers"][frames][1] < plan["levers"][frames][0], frames


def test_checkpointing_and_shorter_clips_use_less_memory(plan):
    for s in STRATEGIES:
        for n in GPU_COUNTS:
            for frames in (49, 81):
                assert _total(plan, f"{frames}/ckpt", s, n) < _total(plan, f"{frames}/no-ckpt", s, n)
            for mode in ("ckpt", "no-ckpt"):
                assert _total(plan, f"81/{mode}", s, n) > _total(plan, f"49/{mode}", s, n)


def test_trainable_state_falls_as_one_over_n(plan):
    for s in STRATEGIES:
        per = {n: plan["wan_memory"]["81/ckpt"][f"{s}/{n}"]["state"] for n in GPU_COUNTS}
        for n in GPU_COUNTS:
            assert per[n] * n == pytest.approx(per[GPU_COUNTS[0]] * GPU_COUNTS[0], rel=1e-9)
        assert per[GPU_COUNTS[-1]] < per[GPU_COUNTS[0]]


def test_analytic_flops_agree_with_flop_counter_mode(plan):
    check = plan["checks"]["flops"][0]  # a scaled-down Wan GenProp step counted by FlopCounterMode on meta
    assert check["analytic"] == pytest.approx(check["counted"], rel=0.03)


def test_activations_scale_with_tokens_and_context_parallelism_helps(plan):
    a49, a81 = (plan["wan_memory"][f"{f}/ckpt"]["activations"]["peak"] for f in (49, 81))
    assert a81 / a49 == pytest.approx(32760 / 20280, rel=0.05)
    cp = plan["context_parallel"]["81x480x832/sharded"]
    assert cp["u"] is not None and cp["u"] > 1 and 40 % cp["u"] == 0  # Ulysses splits Wan's 40 heads


def test_the_gpu_fsdp_step_bench_runs_as_a_cpu_smoke(monkeypatch):
    """``make gpu`` runs bench/bench_fsdp_gpu.py on CUDA; here its CPU smoke: a one-process FSDP step trains and the
    plan's prediction for the same counts is there."""
    import bench_fsdp_gpu

    from tests.ray_cluster import free_port

    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    out = bench_fsdp_gpu.main(["--device", "cpu", "--heads", "1", "--layers", "4", "--frames", "5", "--height", "64",
                               "--width", "64", "--steps", "1"])
    assert out["tokens"] == 32 and out["parameters"]["sce_blocks"] == 1 and out["flops"] > 0
    assert out["predicted_gib"] > 0 and out["loss"] == out["loss"]  # finite
