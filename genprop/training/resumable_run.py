"""The skeleton of a resumable training run without Ray (backbone pretraining, procedural GenProp training).

A run's output directory holds ``progress.json`` (step, samples, wall time per machine, the run's config and
whatever the run adds), ``metrics.jsonl`` (a row per step), ``curve.jsonl`` (a row per validation) and
``model/`` (the EMA weights as the run exports them, swapped in whole); ``<state>/state.pt`` holds the
optimiser, schedule, EMA and RNG state. A call trains until a step count or a time budget, validating,
exporting and checkpointing every ``val_every`` steps and when it stops, so the next call resumes where this
one stopped (from ``model/`` with a fresh optimiser when ``state.pt`` is gone). The Ray Train job drives the
same ``Trainer`` through ``pipelines/train_worker.py``.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from genprop.training.run_files import append_jsonl, publish_dir, read_json, resume_trainer, save_trainer_state, \
    write_json


class ResumableRun:
    """One run's files and its loop.

    Args:
        output (str): local directory with ``model/``, ``progress.json``, ``curve.jsonl``, ``metrics.jsonl``.
        state_dir (str): local directory for ``state.pt``.
        machine (str): a label the wall time is recorded under ("cpu-2core", "h200", ...).
        progress_fields (dict | None): the run's own ``progress.json`` fields and their starting values.
    """

    def __init__(self, output: str, state_dir: str, machine: str = "cpu", progress_fields: dict | None = None):
        os.makedirs(output, exist_ok=True)
        os.makedirs(state_dir, exist_ok=True)
        self.output, self.machine = output, machine
        self.progress_path = os.path.join(output, "progress.json")
        self.state_path = os.path.join(state_dir, "state.pt")
        self.progress = read_json(self.progress_path, {"step": 0, "samples": 0, "wall_s": {}, "config": None,
                                                       **(progress_fields or {})})
        self._mark = time.monotonic()

    def check_unchanged(self, key: str, value, what: str) -> None:
        """Refuse to resume when ``progress[key]`` (recorded when the run started) differs from ``value``, then
        record ``value``.

        Raises:
            ValueError: the run has trained and its record differs (names ``what`` and both values).
        """
        if self.progress["step"] and self.progress.get(key) not in (None, value):
            raise ValueError(f"{what} changed since this run started ({key} {self.progress[key]}, now {value}); "
                             "restore it or start a new output")
        self.progress[key] = value

    def resume(self, trainer, device="cpu") -> None:
        """Put ``trainer`` (built over the run's exported or fresh model) at the last checkpoint's step."""
        resume_trainer(trainer, self.state_path, self.progress["step"], self.output, device)

    def log_step(self, row: dict) -> None:
        """Append one row to ``metrics.jsonl``."""
        append_jsonl(os.path.join(self.output, "metrics.jsonl"), row)

    def checkpoint(self, trainer, validate: Callable[[dict], dict], export: Callable[[str, dict], None]) -> dict:
        """Validate the EMA weights, export them to ``model/``, save the trainer state and ``progress.json``.

        Args:
            trainer (Trainer): the run's trainer.
            validate (Callable[[dict], dict]): EMA weights -> the curve row's scores.
            export (Callable[[str, dict], None]): (a temporary directory, EMA weights) -> writes the model there.

        Returns:
            dict: the curve row written.
        """
        now = time.monotonic()
        wall = self.progress["wall_s"]
        wall[self.machine] = wall.get(self.machine, 0.0) + (now - self._mark)
        self._mark = now
        weights = trainer.ema_weights()
        row = {"step": trainer.step, "samples": self.progress["samples"], "wall_s": dict(wall), **validate(weights)}
        append_jsonl(os.path.join(self.output, "curve.jsonl"), row)
        publish_dir(os.path.join(self.output, "model"), lambda tmp: export(tmp, weights))
        save_trainer_state(trainer, self.state_path)
        self.progress["step"] = trainer.step
        write_json(self.progress_path, self.progress)
        return row

    def train(self, trainer, step: Callable[[int], None], checkpoint: Callable[[], None], *, max_steps: int,
              val_every: int, max_minutes: float | None = None) -> dict:
        """Call ``step(s)`` (one optimiser step from step ``s``) until ``max_steps`` total steps or ``max_minutes``
        of this call, and ``checkpoint()`` every ``val_every`` steps and when the loop stops.

        Returns:
            dict: the final ``progress.json`` content.
        """
        started = self._mark = time.monotonic()
        while trainer.step < max_steps:
            if max_minutes is not None and time.monotonic() - started > 60 * max_minutes:
                break
            step(trainer.step)
            if trainer.step % val_every == 0:
                checkpoint()
        if self.progress["step"] != trainer.step:
            checkpoint()
        return self.progress
