"""The training step shared by both objectives: accumulation, autocast, clipping, schedule, EMA.

No Ray here: ``pipelines/train.py`` drives a ``Trainer`` per Ray Train worker; a plain script (a GPU
box without Ray) drives the same object.
"""

from __future__ import annotations

import contextlib
import time

import torch
import torch.nn as nn

from genprop.sample_draws import SampleDraws
from genprop.training.config import TrainConfig
from genprop.training.ema import EMA
from genprop.training.fsdp import copy_into, full_tensor, reshard_optimizer_state
from genprop.training.objectives import GenPropObjective, I2VObjective, unwrap
from genprop.training.optim import make_optimizer


def make_genprop_objective(config: TrainConfig, model: nn.Module):
    """The paper's objective for ``model`` (a ``GenPropModel``), wrapped by its extension's when it has one."""
    objective = GenPropObjective(config.loss, config.cond_drop_prob)
    if model.config.anchoring is not None:
        from genprop.training.anchored_objective import AnchoredObjective

        objective = AnchoredObjective(objective, model.config.anchoring)
    return objective


def batch_draws(seed: int, batch: dict, step: int) -> SampleDraws:
    """The random draws of ``batch`` at ``step``: one generator per sample keyed by its ``keys`` entry (a batch
    without keys: by its position in the batch), so they do not depend on which worker or micro-batch holds it."""
    n = batch["target_latents"].shape[0]
    return SampleDraws(seed, batch.get("keys") or [f"#{i}" for i in range(n)], step)


class Trainer:
    """Owns the optimiser, schedule, EMA and step counter of one training process.

    Every random draw of a step comes from per-sample generators keyed by the run's seed, the sample's key and the
    step (:func:`batch_draws`), so the trainer holds no RNG state and W workers on a global batch compute what one
    worker computes on it.

    Args:
        model (nn.Module): what the objective calls — a ``GenPropModel`` (``genprop``) or a backbone
            adapter (``i2v``), possibly wrapped in DDP/FSDP.
        config (TrainConfig): objective and optimisation settings.
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        self.model, self.config = model, config
        core = unwrap(model)
        if config.objective == "genprop":
            self.objective = make_genprop_objective(config, core)
            self.named_trainable = GenPropObjective.trainable(core)
            groups = core.parameter_groups(self.named_trainable)
            backbone = core.backbone
        else:
            self.objective = I2VObjective(config.cond_drop_prob)
            self.named_trainable = I2VObjective.trainable(core)
            groups = [{"params": list(self.named_trainable.values()), "lr_scale": 1.0}]
            backbone = core
        backbone.gradient_checkpointing = config.gradient_checkpointing
        for p in self.named_trainable.values():
            p.requires_grad_(True)
        params = list(self.named_trainable.values())
        self.device = params[0].device
        if self.device.type == "cuda":  # a process-wide switch: one trainer per process
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = config.tf32
        self.optimizer, self.scheduler = make_optimizer(groups, config)
        self.ema = EMA(self.named_trainable, config.ema_decay) if config.ema_decay > 0 else None
        self.step = 0

    def _autocast(self):
        if self.config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, micro_batches: list[dict], data_wait_s: float = 0.0) -> dict[str, float]:
        """One optimiser step over ``micro_batches`` (``config.grad_accum`` of them, or any number).

        Args:
            micro_batches (list[dict]): batches as documented in ``genprop.training.objectives``.
            data_wait_s (float, default 0.0): time the caller spent waiting for these batches, reported
                as ``data_wait_frac``.

        Returns:
            dict[str, float]: every loss term (mean over micro-batches), ``lr``, ``grad_norm``,
            ``samples``, ``step_s``, ``samples_per_s``, ``data_wait_frac`` and the new ``step``.

        Raises:
            NonFiniteLossError: a loss that is NaN or infinite (names the step and samples).
        """
        t0 = time.perf_counter()
        self.model.train()
        sums: dict[str, float] = {}
        samples = 0
        for batch in micro_batches:
            with self._autocast():
                terms = self.objective(self.model, batch, self.step, batch_draws(self.config.seed, batch, self.step))
            (terms["loss"] / len(micro_batches)).backward()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            samples += batch["target_latents"].shape[0]
        params = list(self.named_trainable.values())
        clip = self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        grad_norm = float(full_tensor(torch.nn.utils.clip_grad_norm_(params, clip)))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        step_s = time.perf_counter() - t0
        metrics = {k: v / len(micro_batches) for k, v in sums.items()}
        metrics.update(lr=lr, grad_norm=grad_norm, samples=samples, step=self.step, step_s=step_s,
                       samples_per_s=samples / max(step_s + data_wait_s, 1e-9),
                       data_wait_frac=data_wait_s / max(step_s + data_wait_s, 1e-9))
        return metrics

    # ------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: trainable weights, optimiser, schedule, EMA, step."""
        return {
            "step": self.step,
            "trainable": {k: full_tensor(p.detach()).cpu() for k, p in self.named_trainable.items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (the model must be built the same way)."""
        missing = set(self.named_trainable) - set(state["trainable"])
        if missing:
            raise KeyError(f"checkpoint lacks trainable tensors {sorted(missing)[:5]}")
        with torch.no_grad():
            for k, p in self.named_trainable.items():
                copy_into(p, state["trainable"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        reshard_optimizer_state(self.optimizer)
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])

    def ema_weights(self) -> dict[str, torch.Tensor]:
        """The EMA weights (or the live ones when EMA is off), keyed as the model's state_dict; whole tensors
        under FSDP (collective: call on every rank)."""
        if self.ema is not None:
            return {k: full_tensor(v) for k, v in self.ema.weights().items()}
        return {k: full_tensor(p.detach()).clone() for k, p in self.named_trainable.items()}
