"""Stage 3 of make_shards: an actor pool that loads the backbone adapter once per actor and encodes samples."""

from __future__ import annotations

import json
import os
import pickle
import traceback

import numpy as np
import pyarrow as pa

from genprop import storage
from genprop.shards import ShardsConfig

_COLUMNS = ("shard", "position", "source", "video_id", "start", "task", "object_id", "key", "status", "reason",
            "donor_skips")


def _binary_column(values: list[bytes]) -> pa.ChunkedArray:
    """``values`` as a large-binary column whose chunks wrap the bytes objects themselves (no copy)."""
    chunks = [pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(v)], np.int64)),
                                                           pa.py_buffer(v)]) for v in values]
    return pa.chunked_array(chunks, type=pa.large_binary())


class EncodeSamples:
    """``map_batches`` callable class: pair rows -> sample rows (key, tar blocks, manifest fields).

    The adapter (VAE, text and image encoders) is built in ``__init__``, once per actor; on a GPU node the
    actor gets ``num_gpus`` and encodes there. The batch comes back as an Arrow table whose ``tar`` column
    wraps the encoded bytes without a copy (Ray then writes them once, into the object store).

    Args:
        config (ShardsConfig): backbone and hashes.
    """

    def __init__(self, config: ShardsConfig):
        from genprop.shards.encode import SampleEncoder

        self.encoder = SampleEncoder(config)
        self.kill_after = config.kill_encoder_after_samples
        self.output = config.output
        self.encoded = 0

    def _test_hook(self) -> None:
        """``kill_encoder_after_samples`` = k: once this actor has encoded k samples, its worker process dies
        (``os._exit``, no clean-up) when handed the next batch; a restarted actor encodes k more, and so on."""
        if self.kill_after is None or self.encoded < self.kill_after:
            return
        storage.write_text(storage.join(self.output, "_test_hook", f"encoder-exit-{os.getpid()}"),
                           f"exited after {self.encoded} samples\n")
        os._exit(1)

    def __call__(self, batch: dict) -> pa.Table:
        self._test_hook()
        out = {c: [] for c in _COLUMNS + ("tar",)}
        skips = batch.get("donor_skips", ["[]"] * len(batch["plan"]))
        for plan, status, reason, pair, donor_skips in zip(batch["plan"], batch["status"], batch["reason"],
                                                           batch["pair"], skips):
            self.encoded += 1
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
                         ("donor_skips", donor_skips), ("tar", blocks)):
                out[c].append(v)
        return pa.table({**{c: out[c] for c in _COLUMNS}, "tar": _binary_column(out["tar"])})
