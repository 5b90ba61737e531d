"""Per-stage state files: ``<root>/_dag/<stage>.json`` with the stage's config hash and ``running``/``done``.

``done`` is written last, after the stage's job exits 0, so a stage is skipped only when its outputs are
complete for the same config. ``running`` with the same hash means an interrupted run: the stage runs again
over its output and the job resumes there (every job resumes). A different hash means the outputs belong to
another config: they are removed first, because several jobs refuse (shards) or would silently continue
(training, propagation) on another config's output.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass

from genprop import storage


@dataclass(frozen=True)
class StageState:
    """What a stage's state file says.

    Args:
        hash (str): the config hash the stage ran with.
        state (str): ``running`` or ``done``.
        seconds (float | None): wall time of the finished run.
    """

    hash: str
    state: str
    seconds: float | None = None


def state_url(root: str, stage: str) -> str:
    return storage.join(root, "_dag", f"{stage}.json")


def read_state(root: str, stage: str) -> StageState | None:
    """The stage's state, or None when it never ran under ``root`` (or the file is unreadable)."""
    url = state_url(root, stage)
    if not storage.exists(url):
        return None
    try:
        data = json.loads(storage.read_text(url))
        return StageState(hash=str(data["hash"]), state=str(data["state"]), seconds=data.get("seconds"))
    except (ValueError, KeyError, TypeError):
        return None


def write_state(root: str, stage: str, state: StageState) -> None:
    """Write the stage's state file (atomically on local disks; one PUT on object stores)."""
    storage.write_text(state_url(root, stage), json.dumps(
        {"stage": stage, "hash": state.hash, "state": state.state, "seconds": state.seconds,
         "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, indent=1) + "\n")


def clear_output(url: str) -> bool:
    """Remove everything under ``url``; True when something was there.

    Args:
        url (str): a stage's output directory.
    """
    fs, path = storage.filesystem(url)
    if not fs.exists(path):
        return False
    fs.rm(path, recursive=True)
    return True
