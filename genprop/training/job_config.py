"""The training job's configuration (the ``train:`` section of ``jobs/configs/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from genprop.models.genprop_config import GenPropConfig
from genprop.training.config import TrainConfig
from genprop.training.global_batches import BatchLayout


@dataclass(frozen=True)
class TrainJobConfig:
    """Everything ``python -m jobs.train`` needs besides the shards' own config.

    The backbone is the one the shards were made with (their ``config.json``); training never guesses it.

    Args:
        shards (str, default ""): the shard output to train on; "" = the ``shards:`` section's ``output``.
        output (str, default ""): run root: ``checkpoints/``, ``metrics.jsonl``, ``validation/``, ``model/``.
        train (TrainConfig): objective and optimiser settings.
        model (GenPropConfig): the GenProp model without its backbone (the shards'): SCE depth, task embedding
            width, the new layers' seed, an extension (``anchoring``); unused by ``i2v``.
        backbone_pretrained (str | None, default None): backbone weights: local directory, hub id or object-store
            URL (copied once per node); None = the shards' ``backbone.pretrained`` (or built from config).
        batch_size (int, default 1): samples per micro-batch per worker (with ``global_batch_size``: derived).
        global_batch_size (int, default 0): samples per optimiser step over all workers, which fixes what a step
            trains on whatever ``num_workers`` is (each worker's micro-batch is ``global_batch_size / (num_workers
            x train.grad_accum)``, which must divide); 0 = ``batch_size x num_workers x train.grad_accum``.
        prefetch_batches (int, default 4): micro-batches each worker reads and decodes ahead.
        read_threads (int, default 4): concurrent sample reads per worker (ranged reads of the shards).
        num_workers (int, default 2): Ray Train workers.
        use_gpu (bool, default False): one GPU per worker (NCCL); otherwise CPU workers (gloo).
        cpus_per_worker (float, default 0.5): CPUs per worker (fractional on small machines so Ray keeps one).
        strategy (str, default "ddp"): "ddp", or "fsdp" (frozen backbone in bf16 replicated, trainable parts
            sharded in fp32; for backbones that do not fit next to their optimiser state).
        shard_backbone (bool, default False): with "fsdp", shard the frozen backbone's blocks too (gathered per
            block) instead of replicating it: for GPUs that cannot hold a replicated bf16 backbone (docs/scale.md).
        gradient_sync (bool, default True): False is a control, not a way to train: each worker steps its own
            replica on its part of the global batch with no gradient exchange (the test that W workers compute
            what one computes runs it to show it would notice a missing synchronisation).
        checkpoint_every (int, default 500): steps between checkpoints (the last step always checkpoints).
        keep_checkpoints (int, default 3): checkpoints kept on storage.
        max_failures (int, default 3): worker-group restarts before the run fails.
        validate_every (int, default 500): steps between validations (0 = never).
        val_samples (int, default 2): held-out samples (the first of the last shard; that shard is not trained on
            when there are others).
        val_steps (int, default 4): denoising steps of a validation sample.
        log_every (int, default 1): steps between progress lines (metrics go to JSONL every step).
    """

    shards: str = ""
    output: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    model: GenPropConfig = field(default_factory=GenPropConfig)
    backbone_pretrained: str | None = None
    batch_size: int = 1
    global_batch_size: int = 0
    prefetch_batches: int = 4
    read_threads: int = 4
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 0.5
    strategy: str = "ddp"
    shard_backbone: bool = False
    gradient_sync: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    max_failures: int = 3
    validate_every: int = 500
    val_samples: int = 2
    val_steps: int = 4
    log_every: int = 1

    # fields of earlier config shapes -> where they live now (a config in the old shape fails naming them)
    MOVED: ClassVar[dict[str, str]] = {"sce_blocks": "model.sce_blocks", "task_dim": "model.task_dim",
                                       "model_seed": "model.seed",
                                       "train.gate_lr_scale": "model.anchoring.gate_lr_scale",
                                       "train.loss.gate_weight": "model.anchoring.gate_weight",
                                       "fail_at_step": "pipelines.train.train(after_step=...), a callback",
                                       "fail_marker": "pipelines.train.train(after_step=...), a callback",
                                       "shuffle_buffer": "nothing: each epoch is a shuffle of every sample "
                                                         "(genprop.training.global_batches); remove it"}

    def __post_init__(self):
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"strategy must be 'ddp' or 'fsdp', not {self.strategy!r}")
        if self.shard_backbone and self.strategy != "fsdp":
            raise ValueError("shard_backbone needs strategy: fsdp")
        if self.num_workers < 1 or self.batch_size < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("num_workers, batch_size, checkpoint_every and keep_checkpoints must be >= 1")
        if self.global_batch_size < 0:
            raise ValueError(f"global_batch_size must be >= 0 (0: batch_size x num_workers x train.grad_accum), "
                             f"not {self.global_batch_size}")
        layout = self.layout()  # the one split rule (BatchLayout's): raises when it does not divide
        if self.global_batch_size and self.batch_size not in (1, layout.micro_batch):
            raise ValueError(f"batch_size {self.batch_size} contradicts global_batch_size {self.global_batch_size} "
                             f"over {layout.world} x {layout.grad_accum} micro-batches: set one of them")

    def layout(self) -> BatchLayout:
        """How each step's global batch splits over the workers and micro-batches."""
        g = self.global_batch_size or self.batch_size * self.num_workers * self.train.grad_accum
        return BatchLayout(g, self.num_workers, self.train.grad_accum)

    @classmethod
    def tiny(cls, **overrides) -> "TrainJobConfig":
        """The CPU default: 2 workers of 0.5 CPU, a few steps, small GenProp, checkpoints every 2 steps."""
        base = dict(train=TrainConfig.tiny(max_steps=4), model=GenPropConfig(sce_blocks=1, task_dim=16),
                    checkpoint_every=2,
                    keep_checkpoints=2, max_failures=1, validate_every=2, val_samples=1, val_steps=2)
        return cls(**{**base, **overrides})
