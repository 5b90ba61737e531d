"""Stage 1 of make_shards: list the videos under a URL and describe each one (metadata, usable clip starts).

The ids are listed on the driver (one directory listing); opening each video (annotations, a frame header,
an mp4 probe) is spread over Ray tasks. The rows come back to the driver, which sorts them and plans.
"""

from __future__ import annotations

import json

import ray

from genprop.datasets import open_dataset
from genprop.shards import ShardsConfig, describe_video

# Videos described per task: a few listings each, latency-bound on object stores.
_DESCRIBE_BATCH = 16


def _describe(batch: dict, url: str, format: str, config: ShardsConfig) -> dict:
    dataset = open_dataset(url, format)
    return {"row": [json.dumps(describe_video(dataset, str(v), config)) for v in batch["video_id"]]}


def list_videos(config: ShardsConfig, url: str) -> list[dict]:
    """Listing rows of the first ``config.limit`` videos (sorted ids) under ``url``, sorted.

    Args:
        config (ShardsConfig): layout, limit, clip geometry.
        url (str): the dataset root.
    """
    ids = sorted(open_dataset(url, config.format).videos())
    if config.limit is not None:
        ids = ids[: config.limit]
    if not ids:
        return []
    ds = ray.data.from_items([{"video_id": v} for v in ids],
                             override_num_blocks=max(1, min(len(ids), -(-len(ids) // _DESCRIBE_BATCH))))
    ds = ds.map_batches(_describe, batch_size=_DESCRIBE_BATCH, num_cpus=config.pair_num_cpus,
                        fn_kwargs={"url": url, "format": config.format, "config": config})
    rows = [json.loads(r["row"]) for r in ds.take_all()]
    return sorted(rows, key=lambda r: (r["source"], r["video_id"]))

