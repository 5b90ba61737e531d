"""The files of a resumable run without Ray (backbone pretraining, procedural GenProp training).

A run's output directory holds ``progress.json`` (written atomically), append-only logs
(``metrics.jsonl``, ``curve.jsonl``) and an exported model directory swapped in whole. A resumed run first
forgets log rows past its last checkpoint (:func:`drop_rows_after`), so every step is logged once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Callable

import torch

from genprop import storage


def read_json(path: str, default):
    """The JSON content of a local file, or ``default`` when there is none."""
    if not os.path.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


def write_json(path: str, data) -> None:
    """Write ``data`` as indented JSON (atomically)."""
    storage.write_text(path, json.dumps(data, indent=2, sort_keys=True))


def drop_rows_after(path: str, step: int) -> None:
    """Forget the rows of a jsonl log whose ``step`` is past ``step`` (the last checkpoint).

    Args:
        path (str): the log (nothing happens when it does not exist).
        step (int): the step the run resumes from; a resumed run logs the later steps again, once.
    """
    if not os.path.isfile(path):
        return
    with open(path) as f:
        rows = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    storage.write_text(path, "".join(rows))


def append_jsonl(path: str, row: dict) -> None:
    """Append one row (sorted keys) to a jsonl log."""
    with open(path, "a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def publish_dir(directory: str, write: Callable[[str], None]) -> None:
    """Fill a temporary sibling of ``directory`` with ``write(tmp)``, then swap it in.

    A run stopped at any point leaves either the previous directory or the new one, never half of one.

    Args:
        directory (str): the local directory to (re)place.
        write (Callable[[str], None]): writes the directory's content into the path it is given.
    """
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".model-", dir=parent)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = directory + ".old"
    shutil.rmtree(old, ignore_errors=True)  # left by a run stopped between the two renames below
    if os.path.isdir(directory):
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def resume_trainer(trainer, state_path: str, step: int, output: str, device="cpu") -> None:
    """Put ``trainer`` at the run's last checkpoint ``step``.

    The optimiser/EMA/RNG state in ``state_path`` is loaded only when it belongs to exactly that step (else the
    optimiser starts fresh from the exported weights); the schedule follows the global step either way, and the
    logs forget rows past it, so the steps a killed call trained after its checkpoint are logged once.

    Args:
        trainer (Trainer): built over the run's model (its weights already those of ``step``).
        state_path (str): the local ``state.pt``.
        step (int): ``progress.json``'s step.
        output (str): the run directory (``metrics.jsonl``, ``curve.jsonl``).
        device: where to load the state.
    """
    if os.path.isfile(state_path):
        state = torch.load(state_path, map_location=device, weights_only=True)
        if int(state["step"]) == step:
            trainer.load_state_dict(state)
    trainer.step = step
    for log_name in ("metrics.jsonl", "curve.jsonl"):
        drop_rows_after(os.path.join(output, log_name), step)
    trainer.scheduler.last_epoch = step


def save_trainer_state(trainer, state_path: str) -> None:
    """Write ``trainer.state_dict()`` to ``state_path`` atomically."""
    torch.save(trainer.state_dict(), state_path + ".tmp")
    os.replace(state_path + ".tmp", state_path)
