"""Stage 1 of make_shards: list the videos under a URL and describe each one (metadata, usable clip starts).

The ids are listed on the driver (one directory listing); opening each video (annotations, a frame header,
an mp4 probe) is spread over plain Ray tasks. The rows come back to the driver, which sorts them and plans.
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

    Each batch of videos is described by a plain Ray task rather than a Ray Data execution, which would cost
    seconds of start-up for a few hundred bytes per video.

    Args:
        config (ShardsConfig): layout, limit, clip geometry.
        url (str): the dataset root.
    """
    ids = sorted(open_dataset(url, config.format).videos())
    if config.limit is not None:
        ids = ids[: config.limit]
    describe = ray.remote(num_cpus=config.pair_num_cpus)(_describe)
    refs = [describe.remote({"video_id": ids[i:i + _DESCRIBE_BATCH]}, url, config.format, config)
            for i in range(0, len(ids), _DESCRIBE_BATCH)]
    rows = [json.loads(r) for batch in ray.get(refs) for r in batch["row"]]
    return sorted(rows, key=lambda r: (r["source"], r["video_id"]))
