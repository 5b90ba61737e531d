"""Batch manifests: CSV, JSONL or Parquet rows of (id, video, edited_first_frame, prompt, task).

Relative video/image paths are resolved against the manifest's directory, so a manifest and its
files can move together between buckets. Row checks that need no decoding happen here (missing
columns, an id that is not a plain file name, duplicates, unknown tasks); the rest (unreadable
video, missing frame, size mismatch) when the row runs.
"""

from __future__ import annotations

import io
import json
import posixpath

from genprop import storage
from genprop.errors import DataError
from genprop.tasks import Task

COLUMNS = ("id", "video", "edited_first_frame", "prompt", "task")
REQUIRED = ("id", "video", "edited_first_frame")


def _resolve(base: str, value: str) -> str:
    if not value or "://" in value or posixpath.isabs(value):
        return value
    return storage.join(base, value)


def read_manifest(url: str) -> list[dict]:
    """The rows of a manifest, by file extension (.csv, .jsonl/.json, .parquet); every value a string.

    Args:
        url (str): the manifest (any URL).

    Raises:
        DataError: unreadable manifest, unknown extension, or missing required columns.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        data = storage.read_bytes(url)
    except FileNotFoundError:
        raise DataError(url, "manifest not found") from None
    lower = url.lower()
    try:
        if lower.endswith(".csv"):
            rows = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
                strings_can_be_null=False, column_types={c: "string" for c in COLUMNS})).to_pylist()
        elif lower.endswith((".jsonl", ".json")):
            rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        elif lower.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
        else:
            raise DataError(url, "unknown manifest format; expected .csv, .jsonl or .parquet")
    except DataError:
        raise
    except Exception as e:  # pyarrow / json raise many types on bad bytes
        raise DataError(url, f"unreadable manifest ({type(e).__name__}: {e})") from e
    missing = [c for c in REQUIRED if rows and c not in rows[0]]
    if missing:
        raise DataError(url, f"manifest lacks column(s) {missing}; expected {list(COLUMNS)}")
    base = posixpath.dirname(url.rstrip("/")) if "://" in url else storage.local_path(url).rsplit("/", 1)[0]
    out = []
    for r in rows:
        row = {c: "" if r.get(c) is None else str(r.get(c)) for c in COLUMNS}
        row["task"] = row["task"] or "auto"
        row["video"] = _resolve(base, row["video"])
        row["edited_first_frame"] = _resolve(base, row["edited_first_frame"])
        out.append(row)
    return out


def row_problem(row: dict, seen: set[str]) -> str | None:
    """Why a row cannot run (None if it can), checked before any decoding; adds its id to ``seen``.

    Args:
        row (dict): a manifest row.
        seen (set[str]): ids of earlier rows.
    """
    rid = row["id"]
    if not rid or "/" in rid or "\\" in rid or rid in (".", "..") or ".." in rid or rid.startswith("."):
        return f"id {rid!r} is not a plain file name (no '/', no '..', not empty, not hidden)"
    if rid in seen:
        return f"duplicate id {rid!r}"
    seen.add(rid)
    try:
        Task.from_cli(row["task"])
    except ValueError as e:  # the message names the task and the known ones
        return str(e)
    for col in ("video", "edited_first_frame"):
        if not row[col]:
            return f"empty {col}"
    return None
