"""Ray Data verification of a dataset: every video's frames and annotations decoded on an actor pool.

The ids are listed on the driver; each actor opens the dataset once and verifies its videos
(``genprop.datasets.verify.verify_video``: every frame, every annotation, each bad item with its
file and reason). Rows come back as they finish, so the driver reports progress on a dataset of
tens of thousands of videos in object storage.
"""

from __future__ import annotations

import json
import time

import ray

from genprop.datasets import open_dataset
from genprop.datasets.verify import progress_line, verify_video


class VerifyVideos:
    """Callable for ``map_batches``: opens the dataset once per actor.

    Args:
        url (str): the dataset root. format (str): its layout ("auto" detects it).
    """

    def __init__(self, url: str, format: str):
        self.dataset = open_dataset(url, format)

    def __call__(self, batch: dict) -> dict:
        return {"row": [json.dumps(verify_video(self.dataset, str(v))) for v in batch["video_id"]]}


def verify_on_ray(url: str, format: str = "auto", *, actors: int = 2, num_cpus: float = 0.5,
                  videos_per_batch: int = 4, echo=print, interval_s: float = 5.0) -> dict:
    """Verify every video under ``url`` on Ray Data; returns ``verify_dataset``'s report.

    Args:
        url (str), format (str): the dataset.
        actors (int, default 2): actor-pool size. num_cpus (float, default 0.5): CPUs per actor (fractional, so
            Ray Data keeps a CPU on small machines).
        videos_per_batch (int, default 4): videos per ``map_batches`` call.
        echo (callable, default print): progress lines (at most one per ``interval_s``, and the last).
    """
    ds = open_dataset(url, format)
    ids = ds.videos()
    report = {"format": ds.format, "url": ds.url, "videos": len(ids), "frames": 0, "annotations": 0, "bad": []}
    if not ids:
        return report
    data = ray.data.from_items([{"video_id": v} for v in ids])
    data = data.map_batches(VerifyVideos, batch_size=videos_per_batch, concurrency=max(1, min(actors, len(ids))),
                            num_cpus=num_cpus, fn_constructor_kwargs={"url": ds.url, "format": ds.format})
    started, last, rows = time.monotonic(), None, []
    for r in data.iter_rows():
        rows.append(json.loads(r["row"]))
        report["bad"] += [{"id": rows[-1]["id"], "reason": b} for b in rows[-1]["bad"]]
        now = time.monotonic()
        if last is None or now - last >= interval_s or len(rows) == len(ids):
            echo(progress_line(len(rows), len(ids), len(report["bad"]), started))
            last = now
    report["frames"] = sum(r["frames"] for r in rows)
    report["annotations"] = sum(r["annotations"] for r in rows)
    report["bad"].sort(key=lambda b: b["id"])  # rows finish in any order; the report is in id order
    return report
