"""Backbone pretraining on the procedural world (no Ray): curve, export, resume."""

import dataclasses
import json
import os

import numpy as np
import torch

from genprop.backbone_quality import psnr_after_first, reference_scores
from genprop.models.backbones import build_backbone
from genprop.training.backbone_pretraining import VALIDATION_SEED_BASE, PretrainConfig, pretrain
from jobs.pretrain_backbone import main as job_main


def test_reference_scores_on_constructed_clips():
    real = np.zeros((1, 3, 4, 4, 3), np.uint8)
    real[0, 1:] = 10  # frames 2..3 differ from frame 1 by 10 everywhere
    ref = reference_scores(real)
    assert ref["repeat_first"] == np.float64(10 * np.log10(255 ** 2 / 100))
    assert psnr_after_first(real, real)[0] == 100.0  # capped, never inf


def test_validation_seeds_are_held_out():
    cfg = PretrainConfig.tiny()
    assert min(cfg.val_spec().seeds) == VALIDATION_SEED_BASE
    assert max(cfg.train_spec(10).seeds) < VALIDATION_SEED_BASE


def test_pretrain_writes_curve_exports_and_resumes(tmp_path):
    out, state = str(tmp_path / "run"), str(tmp_path / "state")
    cfg = PretrainConfig.tiny()
    progress = pretrain(cfg, out, state, max_steps=4, log=lambda s: None)
    assert progress["step"] == 4 and progress["samples"] == 8
    rows = [json.loads(line) for line in open(os.path.join(out, "curve.jsonl"))]
    assert [r["step"] for r in rows] == [2, 4]
    assert {"model", "repeat_first", "mean_frame", "samples", "wall_s"} <= rows[0].keys()
    # the exported model is the EMA backbone and loads with the adapter
    model_dir = os.path.join(out, "model")
    loaded = build_backbone(dataclasses.replace(cfg.backbone, pretrained=model_dir))
    state_dict = torch.load(os.path.join(state, "state.pt"), weights_only=True)
    for k, v in state_dict["ema"]["shadow"].items():
        torch.testing.assert_close(loaded.state_dict()[k].float(), v)
    # a second call goes on from step 4 (same stream, same optimiser state) to 6 through the job entrypoint
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text("train: {objective: i2v, lr: 0.001, warmup_steps: 2, max_steps: 50, grad_clip: 1.0, "
                    "ema_decay: 0.9}\nbatch_size: 2\nval_clips: 2\nval_every: 2\nval_steps: 1\n")
    assert job_main(["--config", str(yaml), "--output", out, "--state-dir", state, "--max-steps", "6"]) == 0
    rows = [json.loads(line) for line in open(os.path.join(out, "curve.jsonl"))]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert json.load(open(os.path.join(out, "progress.json")))["samples"] == 12


def test_resume_forgets_log_rows_past_the_checkpoint(tmp_path):
    """A run killed between checkpoints logged steps it will train again: the resumed logs hold each step once."""
    out, state = str(tmp_path / "run"), str(tmp_path / "state")
    cfg = PretrainConfig.tiny()
    pretrain(cfg, out, state, max_steps=2, log=lambda s: None)
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:  # what a kill after step 3 leaves behind
        f.write(json.dumps({"step": 3, "loss": 9.0}) + "\n")
    pretrain(cfg, out, state, max_steps=4, log=lambda s: None)
    steps = [json.loads(line)["step"] for line in open(os.path.join(out, "metrics.jsonl"))]
    assert steps == [1, 2, 3, 4]
    assert all(json.loads(line)["loss"] != 9.0 for line in open(os.path.join(out, "metrics.jsonl")))
