"""GenProp training on the procedural world over its own frozen backbone, without Ray.

The same ``Trainer`` (objective ``genprop``) as the Ray Train job, fed with the shard job's samples made on
the fly: step ``s`` renders the scenes of seeds ``s*B .. s*B+B-1`` (:class:`RenderedWorld`), lists and plans
them with ``describe_video`` / ``plan_samples`` (one clip per video; copy-and-paste donors come from the
other videos of the step), makes each routed pair with ``make_planned_pair``, encodes it with
``SampleEncoder`` into the tar blocks a shard would hold, and reads those blocks back with
``decode_training_sample`` / ``collate`` — a shard sample without the shard file, bytes included. Samples
the shard job would skip (no usable object, bad data, a sample that does not decode) are skipped and
counted; the batch is then smaller.

Runs resume wherever they stopped, in the resumable-run skeleton of ``resumable_run`` (as backbone
pretraining): ``<output>/model`` is the EMA of the trainable parts as ``GenPropModel.save_pretrained`` writes it,
plus ``run_config.json``; ``progress.json`` also counts the skipped samples and records the backbone's
fingerprint. The model is the config's ``model`` section (``GenPropConfig``) over the run's backbone: the
paper's GenProp, or the anchored extension with an ``anchoring`` section.

The backbone is loaded from its directory and frozen; a run refuses to resume over a backbone whose files
changed since it started. Validation propagates held-out benchmark cases (seeds from
:data:`GENPROP_VALIDATION_SEED_BASE`) with the EMA model and scores them against exact ground truth
(``genprop.genprop_quality``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from genprop import configs, storage
from genprop.datasets.procedural import TASKS, WorldConfig
from genprop.datasets.procedural.memory import RenderedWorld
from genprop.errors import DataError
from genprop.genprop_quality import CaseSpec, make_validation_cases, mean_scores, reference_scores, score_genprop
from genprop.losses import RegionLossConfig
from genprop.models import GenPropConfig, GenPropModel, build_genprop, load_genprop
from genprop.models.anchoring.config import AnchoringConfig
from genprop.models.backbones.export import load_backbone
from genprop.models.trained_clip import trained_clip
from genprop.shards import ShardsConfig, describe_video, plan_samples
from genprop.shards.clip import make_planned_pair
from genprop.shards.encode import SampleEncoder
from genprop.shards.tar_writer import end_of_archive, read_tar_members
from genprop.synth import SynthConfig
from genprop.synth.sampler import SkipSample
from genprop.tasks import AUGMENTATION_TASKS as SYNTH_TASKS
from genprop.training.backbone_pretraining import VALIDATION_SEED_BASE
from genprop.training.config import TrainConfig
from genprop.training.data import collate, decode_training_sample
from genprop.training.resumable_run import ResumableRun
from genprop.training.run_files import write_json
from genprop.training.trainer import Trainer

# Held out from the backbone's training seeds (< VALIDATION_SEED_BASE) and from its own validation clips.
GENPROP_VALIDATION_SEED_BASE = VALIDATION_SEED_BASE + 500_000
# The propagation task each augmentation trains (an untrained task embedding is replaced by the default).
TRAINS = {t: t.cli_name for t in SYNTH_TASKS}
METRICS = ("step", "loss", "non_mask", "mask", "grad", "mpd", "gate", "lr", "grad_norm", "samples", "samples_per_s",
           "data_wait_frac")


def _default_train() -> TrainConfig:
    return TrainConfig(objective="genprop", lr=2e-4, warmup_steps=100, max_steps=1500, min_lr_ratio=0.1,
                       grad_clip=1.0, ema_decay=0.999, loss=RegionLossConfig(mpd_area_balanced=True))


def _default_model() -> GenPropConfig:
    return GenPropConfig(sce_blocks=2, task_dim=64, seed=0, mask_scale=1,
                         anchoring=AnchoringConfig(flow=True, gate_lr_scale=10.0))


@dataclass(frozen=True)
class GenPropRunConfig:
    """A GenProp training run on the procedural world (YAML: ``jobs/configs/procedural-genprop*.yaml``).

    Args:
        backbone (str, default "models/procedural-backbone/model"): the frozen backbone's directory
            (``save_backbone``'s layout; relative paths are relative to the working directory).
        model (GenPropConfig): the model without its backbone (the run's); by default SCE of 2 blocks, task
            embeddings of 64, and the anchoring extension with its flow channel (run `genprop`; the shipped model is
            a variant of it, docs/results.md).
        train (TrainConfig): objective ``genprop``, optimiser settings and the region-aware loss
            (``train.loss``: ``mpd_weight`` 0 = no MPD; ``region_weighting`` false and ``grad_weight`` 0 = no
            region-aware loss).
        synth (SynthConfig): the augmentations (``ratios``: copy-and-paste, mask-and-fill, colour fill); by
            default the 32x32 preset with colour fill tinting the effects and mask-and-fill leaving them, as the
            shipped run trained (docs/results.md).
        crop_scale (tuple[float, float], default (1.0, 1.0)): the shard job's random crop; 1 keeps the world's
            geometry (the backbone's and the validation cases').
        data_seed (int, default 0): the plan's seed (tasks, colours, donors, pair seeds).
        frames, height, width (int), fps (str): clip geometry, as the backbone's (9 frames 32x32 at 12 fps).
        batch_size (int, default 16): scenes per step.
        val_videos (int, default 16): held-out scenes; one case per task in ``val_tasks`` each.
        val_tasks (tuple[str, ...], default ("remove", "track")): benchmark tasks scored.
        val_every (int, default 250): steps between validations (and checkpoints).
        val_steps (int, default 2): sampling steps when scoring (the procedural backbone's default).
        val_guidance (float, default 1.0): CFG scale when scoring (1.0: none).
        val_seed (int, default 0): sampling seed when scoring.
    """

    backbone: str = "models/procedural-backbone/model"
    model: GenPropConfig = field(default_factory=_default_model)
    train: TrainConfig = field(default_factory=_default_train)
    synth: SynthConfig = field(default_factory=lambda: SynthConfig.tiny(mask_fill_effects=False))
    crop_scale: tuple[float, float] = (1.0, 1.0)
    data_seed: int = 0
    frames: int = 9
    height: int = 32
    width: int = 32
    fps: str = "12"
    batch_size: int = 16
    val_videos: int = 16
    val_tasks: tuple[str, ...] = ("remove", "track")
    val_every: int = 250
    val_steps: int = 2
    val_guidance: float = 1.0
    val_seed: int = 0

    # fields of earlier config shapes -> where they live now (a config in the old shape fails naming them)
    MOVED: ClassVar[dict[str, str]] = {"sce_blocks": "model.sce_blocks", "task_dim": "model.task_dim",
                                       "model_seed": "model.seed", "source_anchor": "model.anchoring (a section)",
                                       "flow_anchor": "model.anchoring.flow",
                                       "train.gate_lr_scale": "model.anchoring.gate_lr_scale",
                                       "train.loss.gate_weight": "model.anchoring.gate_weight"}

    def __post_init__(self):
        object.__setattr__(self, "val_tasks", tuple(self.val_tasks))
        object.__setattr__(self, "crop_scale", tuple(float(c) for c in self.crop_scale))
        if self.train.objective != "genprop":
            raise ValueError("GenProp training uses the genprop objective")
        unknown = [t for t in self.val_tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown val_tasks {unknown}; known: {TASKS}")
        if self.batch_size < 1 or self.val_every < 1:
            raise ValueError("batch_size and val_every must be >= 1")

    @classmethod
    def tiny(cls, backbone: str) -> "GenPropRunConfig":
        """A CPU-test run over the (tiny) backbone saved at ``backbone``."""
        return cls(backbone=backbone, model=dataclasses.replace(_default_model(), sce_blocks=1, task_dim=8),
                   train=TrainConfig.tiny(objective="genprop"), batch_size=2, val_videos=1, val_every=2, val_steps=1)

    def world(self) -> WorldConfig:
        return WorldConfig(videos=0, frames=self.frames, height=self.height, width=self.width, fps=self.fps)

    def train_seeds(self, step: int) -> tuple[int, ...]:
        """Scene seeds of training step ``step`` (0-based): ``step*B .. step*B+B-1``."""
        first = step * self.batch_size
        if first + self.batch_size > VALIDATION_SEED_BASE:
            raise ValueError(f"step {step}: training seeds would reach the held-out seeds")
        return tuple(range(first, first + self.batch_size))

    def val_spec(self) -> CaseSpec:
        base = GENPROP_VALIDATION_SEED_BASE
        return CaseSpec(seeds=tuple(range(base, base + self.val_videos)), tasks=self.val_tasks, frames=self.frames,
                        height=self.height, width=self.width, fps=self.fps)

    def shards_config(self, backbone_config) -> ShardsConfig:
        """The shard job's config these samples follow (the backbone named by its architecture only)."""
        return ShardsConfig(world=self.world(), frames=self.frames, height=self.height, width=self.width,
                            crop_scale=self.crop_scale, seed=self.data_seed, synth=self.synth,
                            backbone={**dataclasses.asdict(backbone_config), "pretrained": None},
                            samples_per_shard=self.batch_size)

    def genprop_config(self, backbone_config) -> GenPropConfig:
        """The ``model`` section over the run's backbone."""
        return self.model.with_backbone(backbone_config)

    def trained_tasks(self) -> set[str]:
        """The propagation tasks the augmentations train (ratio > 0)."""
        return {TRAINS[t] for t, r in zip(SYNTH_TASKS, self.synth.ratios) if r > 0}


class ProceduralSamples:
    """The shard job's samples of the procedural scenes of given seeds, made in memory.

    Args:
        config (GenPropRunConfig): geometry, augmentations, plan seed, batch size.
        backbone: the frozen backbone adapter (encodes latents and G's conditioning).
        device (str, default "cpu"): where encoding runs.
    """

    def __init__(self, config: GenPropRunConfig, backbone, device: str = "cpu"):
        self.config, self.device = config, device
        self.shards = config.shards_config(backbone.config)
        self.encoder = SampleEncoder(self.shards, backbone=backbone, device=device)

    def plan(self, seeds) -> tuple[RenderedWorld, list[dict], list[str]]:
        """The scenes of ``seeds`` as a dataset, their planned sample rows (``plan_samples``), and the reasons
        of the videos the listing skips (``describe_video``)."""
        world = RenderedWorld(seeds, self.config.world())
        listing = [describe_video(world, v, self.shards) for v in world.videos()]
        rows = [p.to_row() for p in plan_samples(listing, self.shards, self.config.batch_size)]
        return world, rows, [f"{v['video_id']}: {v['reason']}" for v in listing if v["status"] != "ok"]

    def raw_sample(self, row: dict, world: RenderedWorld) -> dict:
        """One planned row as a shard holds it: ``{"__key__": key, "<member>": bytes, ...}``.

        Raises:
            DataError, SkipSample: the shard job skips this sample.
        """
        pair = make_planned_pair(row, world, self.shards)
        key, blocks = self.encoder.encode(pair, row)
        raw = {"__key__": key}
        for name, data in read_tar_members(blocks + end_of_archive(len(blocks))):
            raw[name.partition(".")[2]] = data  # grouped by the key before the first dot, as the shard reader
        return raw

    def samples(self, seeds) -> tuple[list[dict], list[str]]:
        """Decoded samples of the scenes of ``seeds`` and the reasons of the ones skipped."""
        world, rows, skipped = self.plan(seeds)
        out = []
        for row in rows:
            try:
                out.append(decode_training_sample(self.raw_sample(row, world)))
            except (DataError, SkipSample, KeyError, ValueError) as e:
                skipped.append(f"{row['video_id']}: {e}")
        return out, skipped

    def batch(self, step: int) -> tuple[dict | None, list[str]]:
        """The collated batch of training step ``step`` (None when every sample was skipped), and the skips."""
        samples, skipped = self.samples(self.config.train_seeds(step))
        return (collate(samples, self.device) if samples else None), skipped


def load_run_model(config: GenPropRunConfig, output: str, backbone) -> GenPropModel:
    """The run's model over ``backbone``: its exported EMA weights when there are some, else a fresh one.

    Raises:
        ValueError: the exported model is not the config's ``model`` (names the fields that differ).
    """
    model_dir = os.path.join(output, "model")
    if not os.path.isfile(os.path.join(model_dir, "genprop_config.json")):
        return build_genprop(config.genprop_config(backbone.config), backbone=backbone)
    model = load_genprop(model_dir, backbone=backbone)
    got = dataclasses.replace(model.config, backbone=None)
    if got != config.model:
        differ = [f.name for f in dataclasses.fields(got) if getattr(got, f.name) != getattr(config.model, f.name)]
        raise ValueError(f"{model_dir}: exported with model fields {differ} = {[getattr(got, n) for n in differ]}, "
                         f"the config asks {[getattr(config.model, n) for n in differ]}")
    return model


def score_run_model(model: GenPropModel, config: GenPropRunConfig, cases: list | None = None,
                    device: str = "cpu") -> dict:
    """A run's validation scores for ``model``, exactly as its learning curve logs them (without the references).

    Args:
        model (GenPropModel): the model (e.g. the run's exported EMA weights).
        config (GenPropRunConfig): the run's config (cases, sampling, trained tasks, MPD).
        cases (list | None): the validation cases when already made; None makes them from the config.
        device (str, default "cpu"): torch device.
    """
    cases = make_validation_cases(config.val_spec()) if cases is None else cases
    return score_genprop(model.eval(), cases, mpd=config.train.loss.mpd_weight > 0, num_steps=config.val_steps,
                         guidance_scale=config.val_guidance, seed=config.val_seed,
                         trained_tasks=config.trained_tasks(), device=device)


def train_genprop_run(config: GenPropRunConfig, output: str, state_dir: str, *, max_steps: int | None = None,
                      max_minutes: float | None = None, machine: str = "cpu", device: str = "cpu",
                      log: Callable[[str], None] = print) -> dict:
    """Train (or go on training) until ``max_steps`` total steps or ``max_minutes`` of this call.

    Arguments and result as :func:`genprop.training.backbone_pretraining.pretrain` (``config`` is this run's).

    Raises:
        ValueError: the backbone changed since the run started, or the export does not fit the config.
    """
    run = ResumableRun(output, state_dir, machine, {"skipped": 0, "backbone_fingerprint": None})
    max_steps = max_steps or config.train.max_steps
    # 1. the frozen backbone (the one the run started over), the model, the trainer and its resumed state
    fingerprint = storage.directory_fingerprint(config.backbone)
    run.check_unchanged("backbone_fingerprint", fingerprint, f"{config.backbone}: the backbone")
    backbone = load_backbone(config.backbone)
    model = load_run_model(config, output, backbone).to(device)
    trainer = Trainer(model, config.train)
    run.resume(trainer, device)
    run.progress["config"] = configs.to_dict(config)
    data = ProceduralSamples(config, backbone, device)
    cases = make_validation_cases(config.val_spec())
    references = mean_scores([reference_scores(c) for c in cases])
    log(f"[genprop] start at step {trainer.step} ({run.progress['samples']} samples) on {machine}; "
        f"{len(cases)} validation cases")

    def validate(weights: dict) -> dict:
        t_val = time.monotonic()
        scored = copy.deepcopy(model)
        scored.load_state_dict(weights, strict=False)
        scores = score_run_model(scored, config, cases, device)
        return {"skipped": run.progress["skipped"], "val_s": round(time.monotonic() - t_val, 3),
                **references, **scores}

    def export(tmp: str, weights: dict) -> None:
        model.save_pretrained(tmp, weights=weights, trained_clip=trained_clip(
            model.backbone, config.frames, config.height, config.width, config.fps))
        write_json(os.path.join(tmp, "run_config.json"), {"step": trainer.step, "config": run.progress["config"],
                                                          "backbone_fingerprint": fingerprint})

    def checkpoint() -> None:
        row = run.checkpoint(trainer, validate, export)
        log(f"[genprop] step {trainer.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(row.items())
                                                             if isinstance(v, float)))

    # 2. one step of a deterministic sample stream, its metrics logged
    def step(s: int) -> None:
        t0 = time.monotonic()
        batch, skipped = data.batch(s)
        if batch is None:
            raise DataError(f"procedural seeds {config.train_seeds(s)}", "every sample was skipped: "
                            + "; ".join(skipped[:3]))
        for reason in skipped:
            log(f"[genprop] step {s + 1}: skipped {reason}")
        metrics = trainer.train_step([batch], data_wait_s=time.monotonic() - t0)
        run.progress["samples"] += int(metrics["samples"])
        run.progress["skipped"] += len(skipped)
        run.log_step({**{k: metrics[k] for k in METRICS if k in metrics}, "skipped": len(skipped)})

    return run.train(trainer, step, checkpoint, max_steps=max_steps, val_every=config.val_every,
                     max_minutes=max_minutes)
