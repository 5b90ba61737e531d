"""The training library without Ray: schedule, EMA, objectives, the step, resume, bad losses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from genprop.losses import RegionLossConfig
from genprop.models import GenPropConfig, GenPropModel
from genprop.models.backbones import WanBackboneConfig
from genprop.training import (EMA, NonFiniteLossError, TrainConfig, Trainer, drop_condition, lr_factor)


def training_batch(backbone, seed=0, batch=2, frames=5, px=32):
    """A collated training batch as the shard reader yields it (routed: target, SCE input, mask, task)."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, frames, 3, px, px, generator=g) * 2 - 1
    source = target.clone()
    source[:, :, :, 8:16, 8:16] = 0.5
    mask = torch.zeros(batch, frames, px, px)
    mask[:, :, 8:16, 8:16] = 1
    with torch.no_grad():
        return {"target_latents": backbone.encode_video(target), "sce_latents": backbone.encode_video(source),
                "cond": backbone.encode_condition(target[:, 0], "x", generator=g, num_frames=frames),
                "mask": mask, "task_id": torch.tensor([1, 2][:batch]), "keys": [f"s{seed}_{i}" for i in range(batch)]}


def test_lr_warms_up_linearly_then_decays_by_cosine():
    cfg = TrainConfig(warmup_steps=4, max_steps=14, min_lr_ratio=0.1)
    assert [lr_factor(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, cfg) == pytest.approx(1.0)
    assert lr_factor(9, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(14, cfg) == pytest.approx(0.1) and lr_factor(100, cfg) == pytest.approx(0.1)


def test_ema_follows_the_weights_with_warmup():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA({"w": p}, decay=0.5)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update()  # first update: decay min(0.5, 1/10) = 0.1
    torch.testing.assert_close(ema.shadow["w"], torch.full((3,), 0.9))
    ema.update()  # min(0.5, 2/11)
    d = 2 / 11
    torch.testing.assert_close(ema.shadow["w"], torch.full((3,), 0.9 * d + (1 - d)))


def test_drop_condition_swaps_in_the_null_condition_per_sample():
    model = GenPropModel(GenPropConfig.tiny("svd"))
    b = training_batch(model.backbone)
    null = model.backbone.null_condition(b["cond"])
    assert drop_condition(model.backbone, b["cond"], 0.0) is b["cond"]
    dropped = drop_condition(model.backbone, b["cond"], 1.0)
    for k in null:
        torch.testing.assert_close(dropped[k], null[k])
    assert not torch.equal(b["cond"]["image_latents"], null["image_latents"])


def overfit_model(kind: str) -> GenPropModel:
    """A tiny model wide enough to fit a batch: Wan's tiny width (24) cannot span the 192 values a token
    of 8x8x48 pixel-unshuffled latents carries, so its loss would plateau whatever the trainer did."""
    if kind == "svd":
        return GenPropModel(GenPropConfig.tiny("svd"))
    wan = WanBackboneConfig.tiny()
    wan = replace(wan, transformer={**wan.transformer, "attention_head_dim": 96, "ffn_dim": 192})
    return GenPropModel(GenPropConfig(backbone=wan, sce_blocks=1, task_dim=16))


@pytest.mark.parametrize("objective, kind", [
    ("genprop", "wan"), pytest.param("genprop", "svd", marks=pytest.mark.slow), ("i2v", "wan"), ("i2v", "svd")])
def test_overfits_a_fixed_batch(objective, kind, monkeypatch):
    import genprop.training.trainer as trainer_module

    # the same noise and timestep every step (the draws of step 0): a memorisable problem
    draws = trainer_module.batch_draws
    monkeypatch.setattr(trainer_module, "batch_draws", lambda seed, batch, step: draws(seed, batch, 0))
    torch.manual_seed(0)
    model = overfit_model(kind)
    target = model if objective == "genprop" else model.backbone
    batch = training_batch(model.backbone)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    lr = {("genprop", "svd"): 3e-2, ("i2v", "wan"): 3e-3}.get((objective, kind), 1e-2)
    cfg = TrainConfig.tiny(objective=objective, lr=lr, max_steps=1000, cond_drop_prob=0.0, ema_decay=0.0,
                           loss=RegionLossConfig(task_drop_prob=0.0, grad_weight=0.0))
    trainer = Trainer(target, cfg)
    losses = []
    for _ in range(60 if (objective, kind) == ("genprop", "svd") else 30):
        losses.append(trainer.train_step([batch])["loss"])
    assert losses[-1] < 0.5 * losses[0], losses
    assert trainer.step == len(losses)
    if objective == "genprop":  # the frozen backbone never moves
        for k, v in model.backbone.state_dict().items():
            assert torch.equal(v, frozen[k]), k


def test_resume_from_state_continues_exactly(tmp_path):
    cfg = TrainConfig.tiny(loss=RegionLossConfig(grad_every=2))

    def fresh():
        return GenPropModel(GenPropConfig.tiny("wan"))

    batches = [training_batch(fresh().backbone, seed=s) for s in range(5)]
    a = Trainer(fresh(), cfg)
    for b in batches[:3]:
        a.train_step([b])
    torch.save(a.state_dict(), tmp_path / "state.pt")
    for b in batches[3:]:
        a.train_step([b])

    b_tr = Trainer(fresh(), cfg)
    b_tr.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert b_tr.step == 3
    for b in batches[3:]:
        b_tr.train_step([b])
    for k, p in a.named_trainable.items():
        assert torch.equal(p, b_tr.named_trainable[k]), k
    for k, w in a.ema_weights().items():
        assert torch.equal(w, b_tr.ema_weights()[k]), k


def weight_distance(a: dict, b: dict) -> float:
    """||a - b|| over every tensor of two state dicts with the same keys."""
    return math.sqrt(sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a))


def _counted(forward, calls: dict, part: str):
    def run(*args, **kwargs):
        calls[part] += 1
        return forward(*args, **kwargs)
    return run


def _split(batch: dict, i: int) -> dict:
    """Sample ``i`` of a collated batch as a batch of one."""
    return {k: (v[i:i + 1] if torch.is_tensor(v) else {n: t[i:i + 1] for n, t in v.items()} if isinstance(v, dict)
                else v[i:i + 1]) for k, v in batch.items()}


@pytest.mark.parametrize("kind", ["wan", pytest.param("svd", marks=pytest.mark.slow)])
def test_a_step_is_the_same_however_the_batch_is_split_and_with_activation_checkpointing(kind):
    """The per-sample draws and the per-sample mean loss make one micro-batch of 2 and 2 micro-batches of 1 the same
    step (as 2 workers of 1 sample are); checkpointing recomputes every block of G, the SCE and the MPD in the
    backward and changes nothing else."""
    torch.manual_seed(0)
    cfg = TrainConfig.tiny(ema_decay=0.0, cond_drop_prob=0.5, loss=RegionLossConfig(task_drop_prob=0.5))
    batch = training_batch(GenPropModel(GenPropConfig.tiny(kind)).backbone, seed=1)
    runs = {}
    for name, kw, micro in (("plain", {}, [batch]), ("accum", dict(grad_accum=2), [_split(batch, 0), _split(batch, 1)]),
                            ("ckpt", dict(gradient_checkpointing=True), [batch])):
        torch.manual_seed(0)
        model = GenPropModel(GenPropConfig.tiny(kind))
        calls = {"g": 0, "sce": 0, "mpd": 0}
        for part, blocks in (("g", model.backbone.encoder_blocks()), ("sce", model.sce.blocks),
                             ("mpd", [model.mpd.block])):
            for block in blocks:  # (a recompute calls forward but not the module's hooks)
                block.forward = _counted(block.forward, calls, part)
        trainer = Trainer(model, replace(cfg, **kw))
        w0 = {k: p.detach().clone() for k, p in trainer.named_trainable.items()}
        losses = [trainer.train_step(micro)["loss"] for _ in range(2)]
        runs[name] = (losses, {k: p.detach().clone() for k, p in trainer.named_trainable.items()}, calls)
    n_g, n_sce = len(GenPropModel(GenPropConfig.tiny(kind)).backbone.encoder_blocks()), 1
    assert runs["plain"][2]["sce"] == 2 * n_sce  # 2 steps; the SCE runs once a step (clean + perturbed batched)
    for name in ("accum", "ckpt"):
        assert runs[name][0] == pytest.approx(runs["plain"][0], rel=1e-5), name
        # Adam turns rounding-level gradient differences into whole steps on elements whose gradient is zero in exact
        # arithmetic (here the cross-attention's q / k over the null prompt's identical tokens, ~1e-9): norms, 1e-2
        assert weight_distance(runs[name][1], runs["plain"][1]) < 1e-2 * weight_distance(runs["plain"][1], w0), name
    # checkpointed: each block's forward again in the backward, but G's first, whose input needs no gradient
    # (nothing trainable comes before it) and which the backward never reaches
    plain, ckpt = runs["plain"][2], runs["ckpt"][2]
    assert ckpt == {"sce": 2 * plain["sce"], "mpd": 2 * plain["mpd"], "g": 2 * plain["g"] - 2} and plain["mpd"] == 2
    assert runs["plain"][2]["g"] >= 2 * n_g


def test_non_finite_loss_names_step_and_samples():
    model = GenPropModel(GenPropConfig.tiny("wan"))
    batch = training_batch(model.backbone)
    batch["target_latents"] = batch["target_latents"] * float("nan")
    trainer = Trainer(model, TrainConfig.tiny())
    with pytest.raises(NonFiniteLossError, match=r"step 0 on samples \['s0_0', 's0_1'\]"):
        trainer.train_step([batch])


def _first_tensor(out):
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


@pytest.mark.parametrize("kind", ["wan", "svd"])
def test_under_bf16_autocast_the_sce_runs_in_fp32_and_g_in_bf16(kind):
    """The memory option a 14B run uses: G under bf16 autocast, the SCE (both of L_grad's passes) in fp32."""
    for fp32_sce in (True, False):
        model = GenPropModel(replace(GenPropConfig.tiny(kind), fp32_sce_under_autocast=fp32_sce))
        seen = {}
        for name, block in (("sce", model.sce.blocks[0]), ("g", model.backbone.encoder_blocks()[-1])):
            block.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, _first_tensor(o).dtype))
        batch = training_batch(model.backbone)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(batch["target_latents"], torch.full((2,), 500.0), batch["cond"], batch["sce_latents"],
                        batch["task_id"])
        assert seen == {"sce": torch.float32 if fp32_sce else torch.bfloat16, "g": torch.bfloat16}, fp32_sce
        assert torch.isfinite(out.prediction.float()).all()
