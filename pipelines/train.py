"""GenProp training on Ray Train: ``TorchTrainer`` over workers that each stream their own shards.

    summary = train(TrainJobConfig.tiny(shards="s3://bucket/shards", output="s3://bucket/runs/r1"))

The driver checks the shards (backbone, shapes) before any worker starts, holds out the last shard for
validation, and runs ``pipelines.train_worker.train_loop_per_worker`` on ``num_workers`` workers with DDP
(gloo on CPU, NCCL on GPU) or FSDP. Checkpoints go to ``<output>/checkpoints/checkpoint-NNNNNN`` through
``RunConfig(storage_path=...)`` (an s3:// output gets its filesystem passed explicitly, so a custom endpoint
works), the last ``keep_checkpoints`` are kept, a failed worker group is restarted up to ``max_failures``
times from the latest checkpoint, and the EMA weights end in ``<output>/model``. A non-finite loss is not
retried (it is deterministic: the same checkpoint and data meet it again): the failing worker records it, the
restarted group stops at once, and the driver raises ``NonFiniteLossError`` naming the step and samples.
"""

from __future__ import annotations

import dataclasses
import json
import time

from genprop import configs, storage
from genprop.shards import ShardsConfig
from genprop.training.job_config import TrainJobConfig
from genprop.training.objectives import NonFiniteLossError
from genprop.training.sample_index import index_shards
from genprop.training.shard_check import ShardSet, check_shards
from pipelines.train_worker import nonfinite_marker, train_loop_per_worker


def storage_for(url: str):
    """``(storage_path, storage_filesystem)`` for ``RunConfig``: a local path as is; a remote URL as its path in a
    ``pyarrow`` filesystem wrapping genprop's fsspec filesystem (which knows the configured S3 endpoint)."""
    if storage.is_local(url):
        return storage.local_path(url), None
    import pyarrow.fs

    fs, path = storage.filesystem(url)
    return path, pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))


def make_trainer(job: TrainJobConfig, shard_set: ShardSet, after_step=None):
    """The ``TorchTrainer`` of a run (not started).

    Args:
        job (TrainJobConfig): the run's config (``output`` required).
        shard_set (ShardSet): checked shards (``genprop.training.shard_check.check_shards``).
        after_step (Callable[[int, int], None] | None): as :func:`train`.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    shards = list(shard_set.shards)
    # the last shard is held out for validation when another is left to train on
    val_shard = shards.pop() if len(shards) > 1 else None
    resources = {"CPU": job.cpus_per_worker, **({"GPU": 1} if job.use_gpu else {})}
    path, fs = storage_for(job.output)
    # the sample index is built once, here (one manifest read per shard; a shard that cannot be indexed fails
    # before any worker starts), and shipped to every worker
    loop_config = {"job": configs.to_dict(job), "shards_config": configs.to_dict(shard_set.config),
                   "train_index": index_shards(shards), "val_shard": val_shard, "after_step": after_step}
    return TorchTrainer(
        train_loop_per_worker, train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if job.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=job.num_workers, use_gpu=job.use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name="checkpoints", storage_path=path, storage_filesystem=fs,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=job.keep_checkpoints),
            failure_config=ray.train.FailureConfig(max_failures=job.max_failures)))


def _raise_if_nonfinite(marker: str) -> None:
    if storage.exists(marker):
        record = json.loads(storage.read_text(marker))
        raise NonFiniteLossError(record["step"], record["keys"], record["terms"])


def train(job: TrainJobConfig, expected_shards: ShardsConfig | None = None, after_step=None) -> dict:
    """Run (or resume) a training run to ``job.train.max_steps``.

    Args:
        job (TrainJobConfig): the run; ``shards`` and ``output`` are required.
        expected_shards (ShardsConfig | None): the deployment's shard config; shards made for another backbone or
            clip shape are refused before training starts.
        after_step (Callable[[int, int], None] | None): called by every worker with ``(step, rank)`` after each
            optimiser step and its checkpoint (pickled into the workers): custom logging, or a test's fault.

    Returns:
        dict: steps, final metrics, the latest checkpoint's URL, the exported model's URL, seconds.

    Raises:
        DataError: no readable shards; ShardMismatchError: shards for another backbone/shape.
        ray.train.TrainingFailedError: the workers failed more than ``max_failures`` times (the cause inside).
        NonFiniteLossError: a loss was NaN or infinite (not retried).
    """
    t0 = time.monotonic()
    if not job.shards or not job.output:
        raise ValueError("train needs a shards URL and an output URL")
    # Ray Train workers run in their own directory: relative local paths must be resolved here.
    job = dataclasses.replace(job, shards=storage.absolute(job.shards), output=storage.absolute(job.output))
    shard_set = check_shards(job.shards, expected_shards)
    print(f"[train] {len(shard_set.shards)} shards at {job.shards}: {shard_set.config.backbone_kind} backbone "
          f"{shard_set.backbone_hash}, latents {shard_set.latent_shape}; {job.num_workers} workers, "
          f"objective {job.train.objective}, {job.train.max_steps} steps", flush=True)
    storage.write_text(storage.join(job.output, "train_config.json"),
                       json.dumps(configs.to_dict(job), indent=1, sort_keys=True) + "\n")
    marker = nonfinite_marker(job.output)
    storage.remove(marker)  # a rerun (after changing what made the loss non-finite) starts clean
    try:
        result = make_trainer(job, shard_set, after_step).fit()
    except Exception:
        _raise_if_nonfinite(marker)
        raise
    _raise_if_nonfinite(marker)  # the restarted group stopped at once and fit() "succeeded"
    metrics = dict(result.metrics or {})
    ckpt = result.checkpoint
    summary = {"steps": int(metrics.get("step", 0)), "metrics": metrics, "output": job.output,
               "checkpoint": storage.join(job.output, "checkpoints", ckpt.path.rstrip("/").split("/")[-1])
               if ckpt is not None else None,
               "model": storage.join(job.output, "model"), "seconds": round(time.monotonic() - t0, 2)}
    storage.write_text(storage.join(job.output, "_SUCCESS"), json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
