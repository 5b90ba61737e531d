"""What each Ray Train worker runs: build the model, wrap it (DDP/FSDP), resume, read its part of every global
batch, step, checkpoint.

Rank 0 also logs metrics (JSONL/TensorBoard, progress line), validates, writes checkpoints and, at the
end, exports the EMA weights. Every worker calls ``ray.train.report`` at the same steps (it is a barrier).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings

import ray.train
import torch
import torch.distributed as dist

from genprop import configs, storage
from genprop.models import GenPropModel, build_genprop
from genprop.models.backbones import build_backbone
from genprop.models.trained_clip import trained_clip
from genprop.models.weights_cache import resolve_pretrained
from genprop.shards import ShardsConfig
from genprop.training import Trainer
from genprop.training.checkpoint import gather_train_state, load_train_state, save_train_state
from genprop.training.data import collate, decode_training_sample
from genprop.training.global_batches import GlobalBatchReader
from genprop.training.job_config import TrainJobConfig
from genprop.training.metrics_log import MetricsLog
from genprop.training.objectives import GenPropObjective, I2VObjective, NonFiniteLossError
from genprop.training.shard_stream import iter_tar_samples
from genprop.training.validation import validate


def nonfinite_marker(output: str) -> str:
    """Where a worker records a non-finite loss (the driver turns it into ``NonFiniteLossError``)."""
    return storage.join(output, "NONFINITE_LOSS.json")


def upload_tree(local_dir: str, url: str) -> None:
    """Copy every file under ``local_dir`` to ``url`` (each file atomically)."""
    for root, _dirs, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(root, name)
            storage.put_file(path, storage.join(url, os.path.relpath(path, local_dir).replace(os.sep, "/")))


def backbone_dtype(job: TrainJobConfig) -> torch.dtype | None:
    """bf16 for GenProp's frozen backbone under FSDP on GPUs (``shard_model`` would cast it anyway: loading it so
    keeps a 14B backbone from ever being whole in fp32, 56 GB, in host or GPU memory); None otherwise."""
    bf16 = job.use_gpu and job.train.bf16 and job.strategy == "fsdp" and job.train.objective == "genprop"
    return torch.bfloat16 if bf16 else None


def build_model(job: TrainJobConfig, backbone_config, dtype: torch.dtype | None = None
                ) -> tuple[torch.nn.Module, dict]:
    """The module the objective trains (the ``model`` section's GenProp, or the backbone for ``i2v``) and its
    config JSON.

    Backbone weights come from ``job.backbone_pretrained`` or the shards' ``pretrained`` (a local directory,
    hub id, or object-store URL copied once per node); the saved config keeps the reference as given.

    Args:
        job (TrainJobConfig): the run.
        backbone_config: the shards' backbone config.
        dtype (torch.dtype | None, default None): GenProp's frozen backbone in this dtype (:func:`backbone_dtype`);
            the trainable parts are fp32 whatever it is (the SCE and MPD start as copies of its blocks).
    """
    ref = job.backbone_pretrained or backbone_config.pretrained
    backbone_config = dataclasses.replace(backbone_config, pretrained=ref)
    backbone = build_backbone(dataclasses.replace(backbone_config, pretrained=resolve_pretrained(ref)),
                              dtype if job.train.objective == "genprop" else None)
    if job.train.objective == "i2v":
        return backbone, {"backbone": backbone.kind, "backbone_config": dataclasses.asdict(backbone_config)}
    config = job.model.with_backbone(backbone_config)
    model = build_genprop(config, backbone=backbone)
    for name, part in model.named_children():
        if name != "backbone":
            part.float()  # fp32 master weights for AdamW
    return model, config.to_dict()


def wrap_model(model: torch.nn.Module, job: TrainJobConfig) -> torch.nn.Module:
    """DDP through Ray Train (gloo on CPU, NCCL on GPU), or FSDP with the frozen backbone in bf16.

    ``gradient_sync: false`` (a control): FSDP over a mesh of this worker alone, or no DDP wrapper, so each worker
    steps its own replica on its own gradients."""
    named = (GenPropObjective.trainable(model) if job.train.objective == "genprop"
             else I2VObjective.trainable(model))
    for p in named.values():  # before wrapping: DDP/FSDP see which parameters train
        p.requires_grad_(True)
    device = ray.train.torch.get_device()
    if job.strategy == "fsdp":
        from genprop.training.fsdp import own_mesh, shard_model

        mesh = None if job.gradient_sync else own_mesh(device)
        return shard_model(model, job.train.objective, device, job.shard_backbone, mesh=mesh)
    sync = dist.is_initialized() and job.gradient_sync
    return ray.train.torch.prepare_model(model, parallel_strategy="ddp" if sync else None)


def _all_mean(values: dict[str, float], device) -> dict[str, float]:
    if not dist.is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / dist.get_world_size() for k, v in zip(keys, t.tolist())}


def _validation_batch(url: str, n: int) -> dict | None:
    samples = []
    for raw in iter_tar_samples(url):
        samples.append(decode_training_sample(raw))
        if len(samples) == n:
            break
    return collate(samples) if samples else None


def train_loop_per_worker(cfg: dict) -> None:
    """The per-worker function given to ``TorchTrainer`` (``cfg`` from ``pipelines.train.make_trainer``)."""
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    job = configs.from_dict(TrainJobConfig, cfg["job"])
    if storage.exists(nonfinite_marker(job.output)):
        return  # a restart after a non-finite loss: it would fail the same way; the driver raises the error
    shards_config = configs.from_dict(ShardsConfig, cfg["shards_config"])
    device = ray.train.torch.get_device()
    if job.strategy == "fsdp":
        # FSDP2 warns that a unit returning a view may skip its all-gather and give wrong gradients: every genprop
        # unit returns tensors of its own (genprop.models.unit_outputs), so a warning means that broke; stop
        warnings.filterwarnings("error", message=r"FSDP2-wrapped module.*returned a view tensor")
    torch.manual_seed(job.train.seed)
    # 1. model (identical on every rank: built under fixed seeds) and its wrapper
    model, model_json = build_model(job, shards_config.backbone_config(), backbone_dtype(job))
    wrapped = wrap_model(model.to(device), job)
    trainer = Trainer(wrapped, job.train)
    core = model
    layout = job.layout()
    # 2. resume from the latest checkpoint (model, EMA, optimiser, schedule, step, data position)
    samples0, skipped0 = 0, 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            data = load_train_state(d, trainer)
        samples0, skipped0 = data["samples"], data["skipped"]
        if samples0 is None:  # an older checkpoint: its steps' global batches, as this run defines them
            samples0 = trainer.step * layout.global_batch
    start_step = trainer.step
    # 3. this worker's part of every global batch from there, read, decoded and collated ahead of the step
    reader = GlobalBatchReader(cfg["train_index"], job.train.seed, layout, rank,
                               decode_training_sample, collate, start=samples0, prefetch=job.prefetch_batches,
                               read_threads=job.read_threads)
    run_dir = tempfile.mkdtemp(prefix="genprop-train-")
    log = val_batch = None
    if rank == 0:
        previous = None
        if storage.exists(storage.join(job.output, "metrics.jsonl")):
            previous = storage.read_text(storage.join(job.output, "metrics.jsonl"))
        log = MetricsLog(run_dir, job.train.max_steps, previous, resume_step=trainer.step)
        print(f"[train] rank 0 of {world}: {'resumed at' if checkpoint else 'starting at'} step {trainer.step} "
              f"(global batch {layout.global_batch} = {world} workers x {job.train.grad_accum} micro-batches x "
              f"{layout.micro_batch}; {samples0} samples consumed)", flush=True)
    if cfg.get("val_shard") and job.validate_every and (rank == 0 or job.strategy == "fsdp"):
        val_batch = _validation_batch(cfg["val_shard"], job.val_samples)
    try:
        while trainer.step < job.train.max_steps:
            # 4. one optimiser step over grad_accum micro-batches
            batches, wait = [], 0.0
            for _ in range(job.train.grad_accum):
                batch, w = reader.next()
                batches.append({k: (v.to(device) if torch.is_tensor(v) else
                                    {n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v)
                                for k, v in batch.items()})
                wait += w
            try:
                m = trainer.train_step(batches, data_wait_s=wait)
            except NonFiniteLossError as e:
                # deterministic: a restart from the last checkpoint meets it again, so no retries (see
                # pipelines.train); any rank may write the marker, all write the same kind of record
                storage.write_text(nonfinite_marker(job.output), json.dumps({**e.to_json(), "rank": rank}))
                raise
            step = trainer.step
            # 5. metrics across workers: losses averaged, throughput summed
            local = {k: v for k, v in m.items() if k not in ("step", "lr")}
            local["new_skips"] = reader.skipped
            mean = _all_mean(local, device)
            skipped = skipped0 + round(mean.pop("new_skips") * world)  # summed over workers
            metrics = {**mean, "step": step, "lr": m["lr"], "samples_per_s": mean["samples_per_s"] * world,
                       "samples": mean["samples"] * world, "skipped_samples": skipped}
            val = None
            if val_batch is not None and job.validate_every and step % job.validate_every == 0:
                val = validate(core, {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in val_batch.items()},
                               job.train.objective, num_steps=job.val_steps, seed=job.train.seed)
                metrics["val_psnr"] = val["psnr"]
            if rank == 0:
                log.log(metrics)
                if step % job.log_every == 0 or step == job.train.max_steps:
                    print(log.progress_line(metrics), flush=True)
                if val is not None:
                    storage.write_bytes(storage.join(job.output, "validation", f"step-{step:06d}.png"), val["strip"])
            # 6. checkpoint: the data position is the global samples consumed; rank 0 writes, all report
            if step % job.checkpoint_every == 0 or step == job.train.max_steps:
                data = {"samples": samples0 + (step - start_step) * layout.global_batch, "skipped": skipped}
                _report(job, trainer, data, model_json, metrics, val, run_dir, rank)
            if cfg.get("after_step") is not None:
                cfg["after_step"](step, rank)
        # 7. export the EMA weights (training is over: the live weights can be overwritten)
        _export(job, trainer, core, rank, shards_config)
    finally:
        reader.close()
        if log is not None:
            log.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _report(job, trainer, data, model_json, metrics, val, run_dir, rank) -> None:
    step = trainer.step
    name = f"checkpoint-{step:06d}"
    gathered = gather_train_state(trainer)  # whole tensors (an all-gather under FSDP: every rank joins)
    if rank != 0:
        ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
        return
    upload_tree(run_dir, job.output)  # metrics.jsonl and TensorBoard events, before the checkpoint registers
    with tempfile.TemporaryDirectory(prefix="genprop-ckpt-") as d:
        save_train_state(d, trainer, data, extra={"job": configs.to_dict(job)}, gathered=gathered)
        with open(os.path.join(d, "model_config.json"), "w") as f:
            json.dump(model_json, f, indent=1, sort_keys=True)
        if val is not None:
            with open(os.path.join(d, "validation.png"), "wb") as f:
                f.write(val["strip"])
            with open(os.path.join(d, "validation.json"), "w") as f:
                json.dump({"step": step, "psnr": val["psnr"], "psnr_per_sample": val["psnr_per_sample"]}, f)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d), checkpoint_dir_name=name)


def _export(job: TrainJobConfig, trainer: Trainer, core: torch.nn.Module, rank: int,
            shards_config: ShardsConfig) -> None:
    """EMA weights -> ``<output>/model``: ``GenPropModel.save_pretrained`` (with the shards' clip shape, which
    propagation takes as its default window and working size) or the backbone export (``i2v``)."""
    ema = {k: v.detach().cpu() for k, v in trainer.ema_weights().items()}
    if rank != 0:
        return
    with tempfile.TemporaryDirectory(prefix="genprop-export-") as d:
        if isinstance(core, GenPropModel):
            clip = trained_clip(core.backbone, shards_config.frames, shards_config.height, shards_config.width,
                                shards_config.fps)
            core.save_pretrained(d, weights=ema, trained_clip=clip)
        else:  # the backbone adapter (i2v objective)
            core.save_pretrained(d, weights=ema)
        upload_tree(d, storage.join(job.output, "model"))
    print(f"[train] exported the EMA weights to {storage.join(job.output, 'model')}", flush=True)
