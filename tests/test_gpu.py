"""Checks that need a CUDA device (run by `make gpu` on a lent GPU machine; skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from genprop.losses import RegionLossConfig
from genprop.models import GenPropConfig, GenPropModel
from genprop.training import TrainConfig, Trainer
from tests.test_training import training_batch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _to(batch: dict, device: str) -> dict:
    return {k: (v.to(device) if torch.is_tensor(v) else {n: t.to(device) for n, t in v.items()}
                if isinstance(v, dict) else v) for k, v in batch.items()}


@pytest.mark.parametrize("kind", ["wan", "svd"])
def test_bf16_training_step_on_cuda_keeps_the_backbone_and_stays_finite(kind):
    model = GenPropModel(GenPropConfig.tiny(kind))
    batch = _to(training_batch(model.backbone), "cuda")
    model.cuda()
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    trainer = Trainer(model, TrainConfig.tiny(loss=RegionLossConfig(grad_every=1)))
    for _ in range(3):
        metrics = trainer.train_step([batch])
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("loss", "grad", "mpd"))
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v.cpu(), frozen[k].cpu()), k
    assert torch.backends.cuda.matmul.allow_tf32  # TrainConfig.tf32: the fp32 SCE on TF32 tensor cores
    Trainer(model, TrainConfig.tiny(tf32=False))
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_sampler_is_deterministic_on_cuda():
    from genprop.sampling import propagate

    model = GenPropModel(GenPropConfig.tiny("wan")).cuda().eval()
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, 5, 3, 32, 32, generator=g) * 2 - 1).cuda()
    a = propagate(model, video, video[:, 0], seed=3)
    b = propagate(model, video, video[:, 0], seed=3)
    assert torch.equal(a, b)
