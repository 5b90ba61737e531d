"""Stage 3 of make_shards: an actor pool that loads the backbone adapter once per actor and encodes samples."""

from __future__ import annotations

import json
import pickle
import traceback

from genprop.shards import ShardsConfig


class EncodeSamples:
    """``map_batches`` callable class: pair rows -> sample rows (key, tar blocks, manifest fields).

    The adapter (VAE, text and image encoders) is built in ``__init__``, once per actor; on a GPU node the
    actor gets ``num_gpus`` and encodes there.

    Args:
        config (ShardsConfig): backbone and hashes.
    """

    def __init__(self, config: ShardsConfig):
        from genprop.shards.encode import SampleEncoder

        self.encoder = SampleEncoder(config)

    def __call__(self, batch: dict) -> dict:
        cols = ("shard", "position", "source", "video_id", "start", "task", "object_id", "key", "status", "reason",
                "tar")
        out = {c: [] for c in cols}
        for plan, status, reason, pair in zip(batch["plan"], batch["status"], batch["reason"], batch["pair"]):
            row = json.loads(plan)
            key, blocks, object_id = "", b"", -1
            if status == "ok":
                try:
                    p = pickle.loads(pair)
                    object_id = p.object_id
                    key, blocks = self.encoder.encode(p, row)
                except Exception as e:  # noqa: BLE001 - recorded in the manifest
                    status, reason = "failed", f"{type(e).__name__}: {e} ({traceback.format_exc(limit=-1)[-300:]})"
            for c, v in (("shard", row["shard"]), ("position", row["position"]), ("source", row["source"]),
                         ("video_id", row["video_id"]), ("start", row["start"]), ("task", row["task"]),
                         ("object_id", object_id), ("key", key), ("status", status), ("reason", reason),
                         ("tar", blocks)):
                out[c].append(v)
        return out
