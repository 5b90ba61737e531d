"""The propagation manifest of a procedural world's benchmark cases (what the DAG's propagate stage runs)."""

from __future__ import annotations

import json

from genprop import storage
from genprop.tasks import Task


def cases_manifest(world: str, limit: int | None = None) -> list[dict]:
    """One manifest row (id, video, edited_first_frame, prompt, task) per case under ``world``, sorted by id.

    A row's task is the propagation name of the case's task (``Task.for_case``: replacing an object or the
    background is a plain first-frame edit, ``edit``).

    Args:
        world (str): a procedural world root (with ``cases/``) or its ``cases/`` directory.
        limit (int | None): the first N cases only.
    """
    root = storage.join(world, "cases") if storage.exists(storage.join(world, "cases")) else world.rstrip("/")
    rows = []
    for name in storage.listdir(root):
        case_json = storage.join(root, name, "case.json")
        if not storage.exists(case_json):
            continue
        case = json.loads(storage.read_text(case_json))
        files = case.get("files", {})
        rows.append({"id": case["case_id"],
                     "video": storage.join(root, name, files.get("original", "original.mp4")),
                     "edited_first_frame": storage.join(root, name, files.get("edited_first_frame",
                                                                               "edited_first_frame.png")),
                     "prompt": case.get("prompt", ""), "task": Task.for_case(case["task"]).cli_name})
    rows.sort(key=lambda r: r["id"])
    return rows[:limit] if limit is not None else rows
