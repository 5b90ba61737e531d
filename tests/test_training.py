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
def test_overfits_a_fixed_batch(objective, kind):
    torch.manual_seed(0)
    model = overfit_model(kind)
    target = model if objective == "genprop" else model.backbone
    batch = training_batch(model.backbone)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    lr = 3e-2 if (objective, kind) == ("genprop", "svd") else 1e-2
    cfg = TrainConfig.tiny(objective=objective, lr=lr, max_steps=1000, cond_drop_prob=0.0, ema_decay=0.0,
                           loss=RegionLossConfig(task_drop_prob=0.0, grad_weight=0.0))
    trainer = Trainer(target, cfg)
    losses = []
    for _ in range(60 if (objective, kind) == ("genprop", "svd") else 30):
        trainer.generator.manual_seed(0)  # the same noise and timestep every step: a memorisable problem
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


def test_gradient_accumulation_and_checkpointing_match_plain_steps():
    torch.manual_seed(0)
    cfg = TrainConfig.tiny(cond_drop_prob=0.0, ema_decay=0.0, loss=RegionLossConfig(task_drop_prob=0.0))
    runs = {}
    for name, kw in (("plain", {}), ("ckpt", dict(gradient_checkpointing=True))):
        model = GenPropModel(GenPropConfig.tiny("wan"))
        trainer = Trainer(model, replace(cfg, **kw))
        m = trainer.train_step([training_batch(model.backbone, seed=1)])
        runs[name] = (m["loss"], {k: p.detach().clone() for k, p in trainer.named_trainable.items()})
    assert runs["plain"][0] == pytest.approx(runs["ckpt"][0], rel=1e-6)
    for k, v in runs["plain"][1].items():
        torch.testing.assert_close(v, runs["ckpt"][1][k], rtol=1e-5, atol=1e-7)


def test_non_finite_loss_names_step_and_samples():
    model = GenPropModel(GenPropConfig.tiny("wan"))
    batch = training_batch(model.backbone)
    batch["target_latents"] = batch["target_latents"] * float("nan")
    trainer = Trainer(model, TrainConfig.tiny())
    with pytest.raises(NonFiniteLossError, match=r"step 0 on samples \['s0_0', 's0_1'\]"):
        trainer.train_step([batch])
