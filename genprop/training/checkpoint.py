"""A training checkpoint on disk: safetensors for tensors, JSON for the rest (no pickle on a user's path).

    trainable.safetensors   the live trainable weights (keyed as the model's state_dict)
    ema.safetensors         the EMA of those weights (absent when EMA is off)
    optimizer.pt            AdamW's state (``torch.save``; read back with ``weights_only=True``)
    state.json              step, schedule, EMA counters, the data position, the run's configs

Whole (gathered) tensors, not FSDP shards: a checkpoint is the same files for any number of workers, resumes on
another number of them, and is read by tools that know nothing of FSDP (docs/design-decisions.md, Training).
There is no RNG state: a step's draws are keyed by the samples and the step (``genprop.sample_draws``), and the
data position is one integer, the global samples consumed (``genprop.training.global_batches``).

Ray Train moves the directory to storage (``pipelines/train.py``); this module only writes and reads it.
"""

from __future__ import annotations

import json
import os

import torch

from genprop.errors import GenPropError
from genprop.training.fsdp import full_tensor
from genprop.training.trainer import Trainer

FORMAT = "genprop-train-state-v2"
_V1 = "genprop-train-state-v1"  # per-rank RNG and stream positions: its weights and optimiser still resume


class TrainStateError(GenPropError):
    """A training checkpoint that cannot be resumed (missing files, other tensors than the model's)."""


def gather_train_state(trainer: Trainer) -> dict:
    """Whole tensors of the trainer's weights, EMA and optimiser state (an all-gather under FSDP: every rank calls
    it; only rank 0 needs to keep the result). Plain tensors pass through."""
    opt = trainer.optimizer.state_dict()
    opt = {**opt, "state": {i: {k: full_tensor(v) if torch.is_tensor(v) else v for k, v in s.items()}
                            for i, s in opt["state"].items()}}
    return {"trainable": {k: full_tensor(p.detach()).cpu().contiguous() for k, p in trainer.named_trainable.items()},
            "ema": ({k: full_tensor(v).cpu().contiguous() for k, v in trainer.ema.shadow.items()}
                    if trainer.ema is not None else None),
            "optimizer": opt}


def save_train_state(directory: str, trainer: Trainer, data: dict | None = None, extra: dict | None = None,
                     gathered: dict | None = None) -> None:
    """Write the trainer's state to ``directory``.

    Args:
        directory (str): a local directory (created).
        trainer (Trainer): rank 0's trainer (weights, optimiser, schedule and EMA are the same on every rank).
        data (dict | None): the data position ``{"samples": global samples consumed, "skipped": bad samples so far}``.
        extra (dict | None): JSON-ready run information stored under ``"run"`` in ``state.json``.
        gathered (dict | None): :func:`gather_train_state`'s result (required under FSDP, where gathering is a
            collective every rank must join before rank 0 saves); None gathers here.
    """
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    gathered = gathered or gather_train_state(trainer)
    save_file(gathered["trainable"], os.path.join(directory, "trainable.safetensors"))
    if gathered["ema"] is not None:
        save_file(gathered["ema"], os.path.join(directory, "ema.safetensors"))
    torch.save(gathered["optimizer"], os.path.join(directory, "optimizer.pt"))
    state = {"format": FORMAT, "step": trainer.step, "scheduler": trainer.scheduler.state_dict(),
             "ema": ({"decay": trainer.ema.decay, "num_updates": trainer.ema.num_updates}
                     if trainer.ema is not None else None),
             "data": {"samples": int((data or {}).get("samples", 0)), "skipped": int((data or {}).get("skipped", 0))},
             "run": extra or {}}
    with open(os.path.join(directory, "state.json"), "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)


def read_state_json(directory: str) -> dict:
    """``state.json`` of a checkpoint directory."""
    path = os.path.join(directory, "state.json")
    if not os.path.isfile(path):
        raise TrainStateError(f"{directory}: not a training checkpoint (state.json is missing)")
    with open(path) as f:
        state = json.load(f)
    if state.get("format") not in (FORMAT, _V1):
        raise TrainStateError(f"{path}: format {state.get('format')!r}, expected {FORMAT!r}")
    return state


def read_ema_weights(directory: str) -> dict[str, torch.Tensor]:
    """The EMA weights of a checkpoint (the live weights when the run had no EMA)."""
    from safetensors.torch import load_file

    path = os.path.join(directory, "ema.safetensors")
    if not os.path.isfile(path):
        path = os.path.join(directory, "trainable.safetensors")
    return load_file(path)


def load_train_state(directory: str, trainer: Trainer) -> dict:
    """Restore ``trainer`` from ``directory``; returns the data position ``{"samples", "skipped"}`` (``samples``
    None for a v1 checkpoint, whose per-worker stream positions do not carry over: the caller starts at the step's
    global batch).

    Raises:
        TrainStateError: missing files, or tensors that are not the trainer's.
    """
    from safetensors.torch import load_file

    state = read_state_json(directory)
    weights = load_file(os.path.join(directory, "trainable.safetensors"))
    if set(weights) != set(trainer.named_trainable):
        missing = sorted(set(trainer.named_trainable) - set(weights))[:5]
        extra = sorted(set(weights) - set(trainer.named_trainable))[:5]
        raise TrainStateError(f"{directory}: trainable tensors differ from the model's (missing {missing}, "
                              f"unexpected {extra})")
    ema = None
    if state["ema"] is not None:
        ema = {**state["ema"], "shadow": load_file(os.path.join(directory, "ema.safetensors"))}
    full = {"step": state["step"], "trainable": weights, "scheduler": state["scheduler"], "ema": ema,
            "optimizer": torch.load(os.path.join(directory, "optimizer.pt"), weights_only=True, map_location="cpu")}
    trainer.load_state_dict(full)
    if state["format"] == _V1:
        return {"samples": None, "skipped": sum(int(r.get("skipped", 0)) for r in state.get("ranks", []))}
    return {"samples": int(state["data"]["samples"]), "skipped": int(state["data"]["skipped"])}
