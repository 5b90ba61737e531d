"""GenProp training on the procedural world (no Ray): samples, curve, export, resume, ablations, scoring."""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from genprop import configs
from genprop.datasets import open_dataset
from genprop.datasets.procedural import Case, WorldConfig, write_world
from genprop.datasets.procedural.memory import RenderedWorld
from genprop.genprop_quality import (MASK_THRESHOLDS, calibrate_mask_threshold, case_scores, iou_frames_after_first,
                                     make_validation_cases, mask_by_frame, mean_scores, psnr_frames_after_first,
                                     recall_frames_after_first, task_id_for)
from genprop.losses import RegionLossConfig, region_aware_loss
from genprop.models.backbones import WanBackboneConfig, build_backbone
from genprop.models.backbones.export import load_backbone, save_backbone
from genprop.models import build_genprop, load_genprop
from genprop.sampling import propagate
from genprop.shards import ShardWriter
from genprop.shards.clip import make_planned_pair
from genprop.shards.encode import SampleEncoder
from genprop.training.backbone_pretraining import VALIDATION_SEED_BASE, PretrainConfig
from genprop.training.data import collate, decode_training_sample
from genprop.training.objectives import GenPropObjective
from genprop.training.procedural_genprop import (GENPROP_VALIDATION_SEED_BASE, GenPropRunConfig, ProceduralSamples,
                                                 train_genprop_run)
from genprop.training.shard_stream import iter_tar_samples
from jobs.train_procedural_genprop import main as job_main

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jobs", "configs")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run far faster on one thread, above all on a CPU shared with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("backbone") / "model")
    save_backbone(build_backbone(WanBackboneConfig.tiny()), path)
    return path


def _run(cfg, root, steps):
    return train_genprop_run(cfg, str(root / "run"), str(root / "state"), max_steps=steps, log=lambda s: None)


def _rows(path):
    return [json.loads(line) for line in open(path)]


def test_train_writes_curve_exports_and_resumes_exactly(tmp_path, backbone_dir):
    cfg = GenPropRunConfig.tiny(backbone_dir)
    straight = tmp_path / "straight"
    _run(cfg, straight, 4)
    # the same run in two calls (the second through the job entrypoint), with a kill after step 3 simulated
    split = tmp_path / "split"
    progress = _run(cfg, split, 2)
    assert progress["step"] == 2 and progress["samples"] + progress["skipped"] == 4
    with open(split / "run" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "loss": 9.0}) + "\n")
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(json.dumps(configs.to_dict(cfg)))
    assert job_main(["--config", str(yaml), "--output", str(split / "run"), "--state-dir", str(split / "state"),
                     "--max-steps", "4", "--threads", "1"]) == 0
    # logs hold each step once, the curve has its validation rows
    assert [r["step"] for r in _rows(split / "run" / "metrics.jsonl")] == [1, 2, 3, 4]
    assert all(r["loss"] != 9.0 for r in _rows(split / "run" / "metrics.jsonl"))
    curve = _rows(split / "run" / "curve.jsonl")
    assert [r["step"] for r in curve] == [2, 4]
    assert {"samples", "wall_s", "val_s", "remove_psnr_model", "remove_psnr_identity", "remove_psnr_track_inpaint",
            "track_iou_colour", "track_iou_mpd", "track_iou_flow"} <= curve[0].keys()
    # resuming gave exactly the uninterrupted run: weights, EMA and logs
    a = torch.load(straight / "state" / "state.pt", weights_only=True)
    b = torch.load(split / "state" / "state.pt", weights_only=True)
    for k in a["trainable"]:
        torch.testing.assert_close(a["trainable"][k], b["trainable"][k], rtol=0, atol=0)
        torch.testing.assert_close(a["ema"]["shadow"][k], b["ema"]["shadow"][k], rtol=0, atol=0)
    for x, y in zip(_rows(straight / "run" / "metrics.jsonl"), _rows(split / "run" / "metrics.jsonl")):
        assert x["loss"] == y["loss"]
    # the export is the EMA model; it loads (over the backbone it names) and propagates
    model = load_genprop(str(split / "run" / "model"))
    for k, v in b["ema"]["shadow"].items():
        torch.testing.assert_close(model.state_dict()[k].float(), v)
    assert json.load(open(split / "run" / "model" / "run_config.json"))["step"] == 4
    video = torch.rand(1, 9, 3, 32, 32) * 2 - 1
    out = propagate(model, video, video[:, 0], num_steps=1, guidance_scale=1.0)
    assert out.shape == video.shape and torch.isfinite(out).all()


def test_refuses_to_resume_over_a_changed_backbone(tmp_path, backbone_dir):
    changed = str(tmp_path / "backbone")
    save_backbone(load_backbone(backbone_dir), changed)
    cfg = dataclasses.replace(GenPropRunConfig.tiny(changed), val_every=1)
    _run(cfg, tmp_path, 1)
    with open(os.path.join(changed, "genprop_backbone.json"), "a") as f:
        f.write("\n")
    with pytest.raises(ValueError, match="backbone changed"):
        _run(cfg, tmp_path, 2)


def test_training_and_validation_seeds_are_disjoint():
    cfg = GenPropRunConfig()
    last = VALIDATION_SEED_BASE // cfg.batch_size - 1
    val = set(cfg.val_spec().seeds)
    assert max(cfg.train_seeds(last)) < VALIDATION_SEED_BASE <= GENPROP_VALIDATION_SEED_BASE == min(val)
    assert not val & set(PretrainConfig().val_spec().seeds)  # nor the backbone's own validation clips
    with pytest.raises(ValueError, match="held-out"):
        cfg.train_seeds(last + 1)


def test_on_the_fly_samples_equal_the_shard_path(tmp_path, backbone_dir):
    """Samples made in memory equal those written to a shard file and read back by the training reader."""
    cfg = GenPropRunConfig.tiny(backbone_dir)
    backbone = load_backbone(backbone_dir)
    data = ProceduralSamples(cfg, backbone)
    seeds = cfg.train_seeds(3)
    samples, skipped = data.samples(seeds)
    assert not skipped and len(samples) == len(seeds)
    # the shard path, from scratch: freshly rendered records, its own encoder, a real tar file, the stream reader
    world, rows = RenderedWorld(seeds, cfg.world()), data.plan(seeds)[1]
    encoder = SampleEncoder(cfg.shards_config(backbone.config), backbone=backbone, device="cpu")
    shard = str(tmp_path / "shard-000000.tar")
    with ShardWriter(shard) as w:
        for row in rows:
            w.add(encoder.encode(make_planned_pair(row, world, cfg.shards_config(backbone.config)), row)[1])
        w.commit()
    read = [decode_training_sample(raw) for raw in iter_tar_samples(shard)]
    assert [s["key"] for s in read] == [s["key"] for s in samples]
    for got, want in zip(samples, read):
        assert got["meta"] == want["meta"] and got["task_id"] == want["task_id"] and got["prompt"] == want["prompt"]
        for name in ("sce_latents", "target_latents", "mask", "cond_frame", "latent_mask", "mpd_target"):
            assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name]), name
        for name, value in want["condition"].items():
            assert np.array_equal(got["condition"][name], value), name
    batch, want = data.batch(3)[0], collate(read)
    assert want["keys"] == batch["keys"] and want["cond"].keys() == batch["cond"].keys()
    for k in ("target_latents", "sce_latents", "mask", "task_id"):
        assert torch.equal(want[k], batch[k]), k
    for k, v in want["cond"].items():
        assert torch.equal(v, batch["cond"][k]), k


def test_rendered_world_reads_like_the_written_world(tmp_path):
    """The in-memory records hold what write_world's files read back hold (frames up to JPEG rounding)."""
    world = WorldConfig(videos=1, frames=9, height=32, width=32, tasks=())
    write_world(str(tmp_path / "world"), world)
    disk = open_dataset(str(tmp_path / "world")).record(world.video_id(0))
    mem = RenderedWorld([world.video_seed(0)], world)
    rec = mem.record(mem.videos()[0])
    assert (rec.object_ids, rec.num_frames, rec.fps) == (disk.object_ids, disk.num_frames, disk.fps)
    assert np.array_equal(rec.masks().masks, disk.masks().masks)
    assert np.abs(rec.frames().astype(int) - disk.frames().astype(int)).mean() < 2


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_ablation_configs_differ_only_where_intended():
    def load(variant=None):
        return configs.load(GenPropRunConfig, os.path.join(CONFIGS, "procedural-genprop.yaml"), variant=variant)

    full = load()
    assert full == GenPropRunConfig()
    base = _flat(configs.to_dict(full))
    expected = {"no-mpd": {"train.loss.mpd_weight": 0.0},
                "no-region-loss": {"train.loss.region_weighting": False, "train.loss.grad_weight": 0.0},
                "no-colour-fill": {"synth.ratios": [0.5, 0.375, 0.0]},
                "colour-heavy": {"synth.ratios": [0.25, 0.25, 0.5]},  # experiments beside the ablations
                "mpd-video-res": {"model.mask_scale": None},
                "mpd-reads-gate": {"model.mask_scale": None, "model.anchoring.mpd_reads_gate": True},
                "mpd-reads-footprint": {"model.mask_scale": None, "model.anchoring.mpd_reads_gate": True,
                                        "model.anchoring.mpd_reads_footprint": True},
                "mpd-reads-footprint-colour-heavy": {"model.mask_scale": None, "model.anchoring.mpd_reads_gate": True,
                                                     "model.anchoring.mpd_reads_footprint": True,
                                                     "synth.ratios": [0.25, 0.25, 0.5]},
                "mpd-reads-footprint-faint-effects": {"model.mask_scale": None, "model.anchoring.mpd_reads_gate": True,
                                                      "model.anchoring.mpd_reads_footprint": True,
                                                      "synth.ratios": [0.25, 0.25, 0.5],
                                                      "synth.colour_fill_effect_paint": [0.0, 0.5]},
                "mpd-reads-footprint-colour-heavy-mpd-weight-4": {
                    "model.mask_scale": None, "model.anchoring.mpd_reads_gate": True,
                    "model.anchoring.mpd_reads_footprint": True, "synth.ratios": [0.25, 0.25, 0.5],
                    "train.loss.mpd_weight": 4.0},
                "mpd-reads-footprint-colour-heavy-mpd-weight-8": {
                    "model.mask_scale": None, "model.anchoring.mpd_reads_gate": True,
                    "model.anchoring.mpd_reads_footprint": True, "synth.ratios": [0.25, 0.25, 0.5],
                    "train.loss.mpd_weight": 8.0}}
    for name, diff in expected.items():
        flat = _flat(configs.to_dict(load(name)))
        assert {k: v for k, v in flat.items() if base.get(k) != v} == diff, name
    assert load("no-colour-fill").trained_tasks() == {"insert", "remove"}
    # the paper's model: the same run without the anchoring extension
    paper = load("paper")
    assert paper.model.anchoring is None and dataclasses.replace(paper, model=full.model) == full
    # its ablations: the paper's model with each ablation's change and nothing else
    for name in ("no-mpd", "no-region-loss", "no-colour-fill"):
        assert load(f"paper-{name}") == dataclasses.replace(load(name), model=paper.model), name
    with pytest.raises(configs.ConfigError, match="no variant 'no-such'"):
        load("no-such")


def test_run_configs_in_an_earlier_shape_name_where_each_field_moved(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("sce_blocks: 2\nflow_anchor: true\ntrain: {gate_lr_scale: 10.0}\n")
    with pytest.raises(configs.ConfigError, match=r"flow_anchor moved to model\.anchoring\.flow; "
                                                  r"sce_blocks moved to model\.sce_blocks"):
        configs.load(GenPropRunConfig, str(old))
    old.write_text("train: {gate_lr_scale: 10.0, loss: {gate_weight: 1.0}}\n")
    with pytest.raises(configs.ConfigError, match=r"gate_lr_scale moved to model\.anchoring\.gate_lr_scale"):
        configs.load(GenPropRunConfig, str(old))


def test_ablation_losses():
    """No MPD: its loss moves nothing; no region-aware loss: the plain MSE and no perturbed SCE pass."""
    g = torch.Generator().manual_seed(0)
    pred, tgt = torch.randn(2, 3, 4, 8, 8, generator=g), torch.randn(2, 3, 4, 8, 8, generator=g)
    m = torch.zeros(2, 3, 1, 8, 8)
    m[0, :, :, 1:3, 1:3] = 1
    out = type("Out", (), dict(prediction=pred, mask=torch.rand(2, 3, 8, 8, requires_grad=True), sce_features=[],
                               sce_features_perturbed=None, delta=0.0))()
    plain = RegionLossConfig(region_weighting=False, grad_weight=0.0)
    torch.testing.assert_close(region_aware_loss(out, tgt, m, m[:, :, 0], plain)["loss"],
                               ((pred - tgt) ** 2).mean() + torch.mean((out.mask - m[:, :, 0]) ** 2))
    assert plain.grad_delta_at(0) == 0.0 and RegionLossConfig().grad_delta_at(0) == 0.01
    no_mpd = region_aware_loss(out, tgt, m, m[:, :, 0], RegionLossConfig(mpd_weight=0.0))
    no_mpd["loss"].backward()
    assert torch.count_nonzero(out.mask.grad) == 0


def test_without_mpd_loss_the_mpd_changes_nothing(backbone_dir):
    """MPD weight 0: the prediction never reads the MPD, and the SCE's gradients do not depend on its weights."""
    cfg = GenPropRunConfig.tiny(backbone_dir)
    loss = dataclasses.replace(cfg.train.loss, mpd_weight=0.0, task_drop_prob=0.0)
    backbone = load_backbone(backbone_dir)
    batch, _ = ProceduralSamples(cfg, backbone).batch(0)
    grads = []
    for mpd_seed in (0, 1):
        model = build_genprop(cfg.genprop_config(backbone.config), backbone=backbone)
        with torch.no_grad():
            g = torch.Generator().manual_seed(7)
            for p in model.sce.parameters():  # non-zero injections, as after some training
                p.add_(0.05 * torch.randn(p.shape, generator=g))
            g = torch.Generator().manual_seed(mpd_seed)
            for p in model.mpd.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        terms = GenPropObjective(loss, 0.0)(model, batch, 0, torch.Generator().manual_seed(3))
        terms["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert all(torch.count_nonzero(p.grad) == 0 for p in model.mpd.parameters() if p.grad is not None)
    for name, g in grads[0].items():
        if not name.startswith("mpd."):
            torch.testing.assert_close(g, grads[1][name], rtol=0, atol=0, msg=name)


def test_scores_on_constructed_inputs():
    t, h, w = 3, 4, 4
    original = np.zeros((t, h, w, 3), np.uint8)
    target = original.copy()
    mask = np.zeros((t, h, w), bool)
    mask[:, :2, :2] = True  # 4 of 16 pixels
    effects = np.zeros_like(mask)
    effects[:, 0, 0] = True
    target[mask] = 100
    case = Case(case_id="c", task="remove", video_id="v", object_id=1, prompt="", original=original, target=target,
                mask=mask, effect_mask=None, seed=0, fps="12")
    frames = target.copy()
    frames[1:, 3, 3] = 10  # one wrong pixel per frame, error 10 on 3 channels
    scores = case_scores(case, frames, mpd_mask=mask.astype(np.float32) * 0.9)
    assert scores["remove_psnr_model"] == pytest.approx(10 * np.log10(255 ** 2 / (100 / 16)))
    assert scores["remove_psnr_region_model"] == 100.0 and scores["remove_iou_mpd"] == 1.0
    assert scores["remove_recall_mpd"] == 1.0
    # a checkpoint's calibrated threshold above the mask's values: nothing is marked
    cut = case_scores(case, frames, mpd_mask=mask.astype(np.float32) * 0.9, mask_threshold=0.95)
    assert cut["remove_iou_mpd"] == 0.0 and cut["remove_recall_mpd"] == 0.0
    half = mask.copy()
    half[:, 1] = False  # half of the object's pixels each frame
    assert recall_frames_after_first(half, mask) == 0.5 and recall_frames_after_first(mask | ~mask, mask) == 1.0
    assert psnr_frames_after_first(original, target) == pytest.approx(10 * np.log10(255 ** 2 / (4 * 100 ** 2 / 16)))
    # tracking: the painted change, against the object and against object + effects
    obj = mask & ~effects  # the object; the effect (a shadow) is not painted
    painted = dataclasses.replace(case, task="track", effect_mask=effects,
                                  target=np.repeat(np.where(obj[..., None], 200, 0), 3, -1).astype(np.uint8))
    gen = painted.target.copy()
    gen[2, 1, 1] = 0  # frame 3 misses one object pixel
    scores = case_scores(painted, gen)
    assert scores["track_iou_colour"] == pytest.approx(np.mean([1.0, 2 / 3]))  # object: 3 px; frame 3 finds 2
    assert scores["track_iou_fx_colour"] == pytest.approx(np.mean([3 / 4, 2 / 4]))  # the paint never reaches a shadow
    assert iou_frames_after_first(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), bool)) == 1.0
    assert mean_scores([{"a": 1.0, "b": None}, {"a": 3.0}], ["remove", "track"]) == \
        {"a": 2.0, "b": None, "remove_cases": 1, "track_cases": 1}
    assert [task_id_for(t) for t in ("remove", "insert", "track", "replace")] == [2, 1, 3, 0]
    assert task_id_for("track", {"insert", "remove"}) == 0


def test_mask_threshold_is_calibrated_where_the_region_scores_best():
    truth = np.zeros((3, 8, 8), bool)
    truth[:, 2:5, 2:5] = True
    ring = np.zeros_like(truth)
    ring[:, 1:6, 1:6] = True
    ring &= ~truth
    # 0.75 on the object, 0.35 on a ring round it: cuts at 0.4 .. 0.75 are exact, 0.35 and below take the ring too,
    # 0.8 and above mark nothing
    soft = np.where(truth, 0.75, np.where(ring, 0.35, 0.05)).astype(np.float32)
    threshold, best, by = calibrate_mask_threshold([soft, soft], [truth, truth])
    assert threshold == 0.4 and best == 1.0  # the lowest of the tied best
    assert by[0.3] == pytest.approx(9 / 25) and by[0.8] == 0.0 and set(by) == set(MASK_THRESHOLDS)
    with pytest.raises(ValueError, match="one true region per mask"):
        calibrate_mask_threshold([soft], [])


def test_mask_by_frame_shows_a_mask_that_spreads_over_the_clip():
    truth = np.zeros((3, 8, 8), bool)
    truth[:, 2:5, 2:5] = True
    soft = np.where(truth, 0.9, 0.1).astype(np.float32)
    soft[2] = np.where(truth[2], 0.7, 0.1)
    soft[2, 0, :] = 0.6  # frame 3 also marks a row outside the object, below the first cut
    rows = mask_by_frame([soft], [truth], cut=0.8)
    assert [r["frame"] for r in rows] == [2, 3]  # frame 1 is the given edit, never scored
    assert rows[0]["inside"] == pytest.approx(0.9) and rows[0]["outside"] == pytest.approx(0.1)
    assert rows[0]["iou"] == 1.0 and rows[1]["iou"] == 0.0  # the frame-3 mask falls below the cut
    assert rows[1]["inside"] == pytest.approx(0.7) and rows[1]["outside"] == pytest.approx((0.1 * 47 + 0.6 * 8) / 55)
    assert rows[1]["best_cut"] == 0.65 and rows[1]["best_iou"] == 1.0  # the lowest cut that leaves the row out
    with pytest.raises(ValueError, match="one true region per mask"):
        mask_by_frame([soft], [], cut=0.5)


SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "procedural-genprop")
BACKBONE = os.path.join(os.path.dirname(SHIPPED), "procedural-backbone", "model")
# the variant of procedural-genprop.yaml the shipped run trained (None: its base)
SHIPPED_VARIANT = "mpd-reads-footprint-colour-heavy-mpd-weight-4"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_shipped_weights_reproduce_their_validation_and_hold_the_floors():
    """models/procedural-genprop loads from a clone (its backbone by a relative path) and scores what its
    ``validation.json`` records (``scripts/validate_shipped.py``: its run's held-out cases, the current sampler),
    within a few hundredths of the curve's last row (what the same cases scored while it trained); there GenProp's
    removal PSNR is above the original video's and its tracking IoU against object + effects above the flow
    tracker's (the two quality floors); its MPD's regions, cut at the checkpoint's calibrated values, score what
    the record says, and on removal overlap the removed object and its effects by IoU 0.5 at least."""
    from genprop.training.procedural_genprop import score_run_model

    with open(os.path.join(SHIPPED, "model", "run_config.json")) as f:
        shipped = json.load(f)
    with open(os.path.join(SHIPPED, "curve.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
    with open(os.path.join(SHIPPED, "validation.json")) as f:
        recorded = json.load(f)
    assert last["step"] == shipped["step"] == recorded["step"]
    config = configs.from_dict(GenPropRunConfig, shipped["config"], where="run_config.json")
    model = load_genprop(os.path.join(SHIPPED, "model"))
    scores = score_run_model(model, config)
    for key in ("remove_psnr_model", "remove_psnr_region_model"):
        assert scores[key] == pytest.approx(recorded["scores"][key], abs=1e-3), key
        assert scores[key] == pytest.approx(last[key], abs=0.25), key  # another draw of the same sampler's noise
    for key in ("track_iou_colour", "track_iou_fx_colour"):
        assert scores[key] == pytest.approx(recorded["scores"][key], abs=1e-4), key
        assert scores[key] == pytest.approx(last[key], abs=0.02), key
    # the MPD's regions, each task's cut at the checkpoint's calibrated value (the curve cut them at 0.5)
    for key in ("track_iou_fx_mpd", "remove_iou_mpd", "remove_recall_mpd"):
        assert scores[key] == pytest.approx(recorded["scores"][key], abs=1e-3), key
    assert scores["remove_psnr_model"] > last["remove_psnr_identity"]
    assert scores["track_iou_fx_colour"] > last["track_iou_fx_flow"]
    assert scores["remove_iou_mpd"] >= 0.5  # the MPD marks the removed object and its effects


def test_the_ray_train_entry_point_builds_the_shipped_model():
    """The Ray Train job's config takes the same model section as the procedural run: from procedural-genprop.yaml's
    ``model`` over the shards' backbone (the procedural one) it builds the shipped model, which then loads the
    shipped weights tensor for tensor and predicts what ``load_genprop`` of the shipped checkpoint predicts."""
    import yaml
    from safetensors.torch import load_file

    from genprop.models.backbones import backbone_config_from_dict
    from genprop.training.job_config import TrainJobConfig
    from pipelines.train_worker import build_model

    url = os.path.join(CONFIGS, "procedural-genprop.yaml")
    model_section = configs.apply_variant(yaml.safe_load(open(url)), url, SHIPPED_VARIANT)["model"]
    with open(os.path.join(SHIPPED, "model", "run_config.json")) as f:  # the shipped run is that variant's, whole
        assert configs.from_dict(GenPropRunConfig, json.load(f)["config"]) == \
            configs.load(GenPropRunConfig, url, variant=SHIPPED_VARIANT)
    job = configs.from_dict(TrainJobConfig, {"model": model_section, "backbone_pretrained": BACKBONE},
                            where="train")
    stored = json.load(open(os.path.join(BACKBONE, "genprop_backbone.json")))
    shards_backbone = backbone_config_from_dict(stored["backbone"], stored["backbone_config"])  # as shards record it
    built, model_json = build_model(job, shards_backbone)
    shipped = load_genprop(os.path.join(SHIPPED, "model"))
    assert type(built) is type(shipped)
    assert dataclasses.replace(built.config, backbone=None) == dataclasses.replace(shipped.config, backbone=None)
    assert model_json["anchoring"] == dataclasses.asdict(shipped.config.anchoring)
    weights = load_file(os.path.join(SHIPPED, "model", "genprop_trainable.safetensors"))
    built.load_state_dict(weights, strict=False)
    assert set(built.trainable_state_dict()) == set(weights)
    case = make_validation_cases(GenPropRunConfig().val_spec())[1]
    video = torch.from_numpy(case.original).permute(0, 3, 1, 2)[None].float() / 127.5 - 1
    first = torch.from_numpy(case.target[0]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        a = propagate(built.eval(), video, first, num_steps=1, guidance_scale=1.0)
        b = propagate(shipped.eval(), video, first, num_steps=1, guidance_scale=1.0)
    assert torch.equal(a, b)
