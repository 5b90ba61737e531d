"""From decoded shard samples to the training batch contract, and a prefetching batch reader.

The batch contract is documented in ``genprop.training.objectives``. Samples arrive routed by the shard
job (SCE input, G's conditioning, target, mask): nothing here loads a text or image encoder.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import numpy as np
import torch

from genprop.shards.sample import decode_sample
from genprop.training.shard_stream import ShardStream, StreamPosition


def decode_training_sample(raw: dict) -> dict:
    """Decode a raw sample (member name -> bytes) into the arrays training needs.

    Raises ``KeyError``/``ValueError`` on a sample that lacks members or does not parse (the stream skips it).
    """
    s = decode_sample(raw)
    for name in ("sce_latents", "target_latents", "mask"):
        if name not in s:
            raise KeyError(f"sample {s['key']} lacks {name}.npy")
    return s


def collate(samples: list[dict], device: torch.device | str = "cpu") -> dict:
    """Stack decoded samples into a batch (fp32 tensors on ``device``).

    Args:
        samples (list[dict]): from :func:`decode_training_sample`.
        device (torch.device | str, default "cpu"): where the tensors go.

    Returns:
        dict: ``target_latents``, ``sce_latents`` (B, T_lat, C, h, w); ``cond`` {name: (B, ...)}; ``mask``
        (B, T, H, W) float; ``task_id`` (B,) long; ``keys`` list[str].
    """
    def stack(arrays):
        return torch.from_numpy(np.stack([np.asarray(a, dtype=np.float32) for a in arrays])).to(device)

    names = sorted(samples[0]["condition"])
    for s in samples[1:]:
        if sorted(s["condition"]) != names:
            raise ValueError(f"samples {samples[0]['key']} and {s['key']} carry different conditions")
    return {
        "target_latents": stack([s["target_latents"] for s in samples]),
        "sce_latents": stack([s["sce_latents"] for s in samples]),
        "cond": {n: stack([s["condition"][n] for s in samples]) for n in names},
        "mask": stack([s["mask"] for s in samples]),
        "task_id": torch.tensor([int(s["task_id"]) for s in samples], dtype=torch.long, device=device),
        "keys": [s["key"] for s in samples],
    }


class BatchReader:
    """Micro-batches from a :class:`ShardStream`, decoded and collated by a background thread.

    The thread keeps ``prefetch`` batches ready, so the step waits for data only when reading is slower
    than training; :meth:`next` returns the time it waited.

    Args:
        stream (ShardStream): the worker's stream.
        batch_size (int): samples per micro-batch.
        prefetch (int, default 4): batches kept ready.
    """

    def __init__(self, stream: ShardStream, batch_size: int, prefetch: int = 4):
        self.stream, self.batch_size = stream, batch_size
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genprop-batch-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            it: Iterator = iter(self.stream)
            while not self._stop.is_set():
                items = [next(it) for _ in range(self.batch_size)]
                batch = collate([s for _, s in items])
                self._put((items[-1][0], batch))
        except BaseException as e:  # noqa: BLE001 - re-raised in the training thread
            self._put(e)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> tuple[dict, StreamPosition, float]:
        """The next batch, the stream position after it, and the seconds spent waiting for it."""
        t0 = time.perf_counter()
        item = self._queue.get()
        wait = time.perf_counter() - t0
        if isinstance(item, BaseException):
            raise item
        position, batch = item
        return batch, position, wait

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
