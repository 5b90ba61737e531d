"""The Parquet manifest: a row per input video and per planned sample, with status and reason."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

STATUSES = ("ok", "skipped", "failed")
SCHEMA = pa.schema([
    ("kind", pa.string()),        # "video" | "sample" | "donor" (a copy-and-paste donor that was replaced)
    ("source", pa.string()),
    ("video_id", pa.string()),
    ("key", pa.string()),         # sample key ("" for video rows and samples that were not made)
    ("shard", pa.int32()),        # -1 for video rows
    ("position", pa.int32()),     # place in the shard's plan; -1 for video rows
    ("status", pa.string()),      # "ok" | "skipped" | "failed"
    ("reason", pa.string()),
    ("task", pa.string()),
    ("object_id", pa.int32()),
    ("start", pa.int32()),
    ("bytes", pa.int64()),        # the sample's bytes in its shard
    ("config_hash", pa.string()),
])
_DEFAULTS = {"key": "", "shard": -1, "position": -1, "reason": "", "task": "", "object_id": -1, "start": -1,
             "bytes": 0}


def manifest_table(rows: list[dict]) -> pa.Table:
    """Rows (missing columns take defaults) as a table in :data:`SCHEMA`, sorted (video rows first)."""
    full = [{**_DEFAULTS, **r} for r in rows]
    for r in full:
        if r["status"] not in STATUSES:
            raise ValueError(f"bad status {r['status']!r}")
    full.sort(key=lambda r: (r["kind"] != "video", r["source"], r["video_id"], r["shard"], r["position"]))
    return pa.Table.from_pylist([{f.name: r[f.name] for f in SCHEMA} for r in full], schema=SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet bytes (same rows, same pyarrow version: same bytes)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_manifest(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def video_rows(listing: list[dict], samples: list[dict], config_hash: str) -> list[dict]:
    """One row per input video: skipped at listing, else ok when at least one of its samples is ok.

    Args:
        listing (list[dict]): rows of ``describe_video``.
        samples (list[dict]): sample manifest rows.
        config_hash (str): recorded on every row.
    """
    by_video: dict[tuple, list[dict]] = {}
    for s in samples:
        by_video.setdefault((s["source"], s["video_id"]), []).append(s)
    out = []
    for v in listing:
        row = {"kind": "video", "source": v["source"], "video_id": v["video_id"], "status": v["status"],
               "reason": v["reason"], "config_hash": config_hash}
        mine = by_video.get((v["source"], v["video_id"]), [])
        if v["status"] == "ok" and mine and not any(s["status"] == "ok" for s in mine):
            row.update(status=mine[0]["status"], reason=mine[0]["reason"])
        out.append(row)
    return out
