"""Every step's global batch, the same samples for any number of workers, read ahead by each worker.

The run's samples (:func:`genprop.training.sample_index.index_shards`, N of them) form one endless sequence:
epoch ``e`` is a permutation of all N seeded by ``(seed, e)``, epochs follow each other, and global position
``p`` is sample ``order_e[p mod N]`` with ``e = p // N``. Step ``k``'s global batch is positions
``[k G, (k + 1) G)`` (G = the global batch); worker ``r`` of ``W`` takes, for micro-batch ``m`` of ``A``, the
``b = G / (W A)`` positions starting at ``k G + m W b + r b``. So the set of samples a step trains on depends on
the seed and the step alone, a resumed run starts at position ``samples consumed`` (one integer in the
checkpoint), and a run may resume on another number of workers. Each sample is read once, by the worker that
trains on it, with one ranged read (:func:`genprop.training.sample_index.read_sample`).

A sample that cannot be read or decoded is recorded (``skipped``, ``skip_reasons``) and replaced by the next
readable sample of the index (``index + 1, index + 2, ...``): the replacement depends on the data alone, so every
worker count still trains on the same samples, and every micro-batch keeps its size (no worker waits at a
collective for another that ran short).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from genprop.errors import DataError
from genprop.training.sample_index import SampleRef, read_sample


@dataclass(frozen=True)
class BatchLayout:
    """How a global batch splits over workers and micro-batches.

    Args:
        global_batch (int): samples per optimiser step over all workers.
        world (int): workers.
        grad_accum (int): micro-batches per optimiser step.
    """

    global_batch: int
    world: int
    grad_accum: int

    def __post_init__(self):
        if self.global_batch < 1 or self.global_batch % (self.world * self.grad_accum):
            raise ValueError(f"a global batch of {self.global_batch} does not split into {self.world} workers x "
                             f"{self.grad_accum} micro-batches")

    @property
    def micro_batch(self) -> int:
        """Samples per micro-batch per worker."""
        return self.global_batch // (self.world * self.grad_accum)

    def positions(self, step_start: int, rank: int, micro: int) -> range:
        """Global positions of worker ``rank``'s micro-batch ``micro`` of the step starting at ``step_start``."""
        b = self.micro_batch
        first = step_start + micro * self.world * b + rank * b
        return range(first, first + b)


class GlobalOrder:
    """The run's endless sample sequence: position -> index into the sample index.

    Args:
        num_samples (int): N, the samples in the index.
        seed (int): the run's seed.
    """

    def __init__(self, num_samples: int, seed: int):
        if num_samples < 1:
            raise ValueError("no samples to order")
        self.n, self.seed = num_samples, seed
        self._epoch, self._perm = -1, []

    def __getitem__(self, position: int) -> int:
        epoch, i = divmod(position, self.n)
        if epoch != self._epoch:
            perm = list(range(self.n))
            random.Random(f"{self.seed}/{epoch}").shuffle(perm)
            self._epoch, self._perm = epoch, perm
        return self._perm[i]


class GlobalBatchReader:
    """This worker's micro-batches from ``start`` on, read, decoded and collated ahead by a background thread.

    Args:
        refs (list[SampleRef]): the sample index (the same list on every worker).
        seed (int): the run's seed (the order).
        layout (BatchLayout): the global batch's split.
        rank (int): this worker.
        decode (callable): raw sample -> decoded sample (raises ``DataError``/``ValueError``/``KeyError`` on a bad one).
        collate (callable): decoded samples -> batch.
        start (int, default 0): the global position of the first step to read (samples consumed before it).
        prefetch (int, default 4): micro-batches kept ready.
        read_threads (int, default 4): concurrent sample reads (object storage is latency-bound).
    """

    def __init__(self, refs: list[SampleRef], seed: int, layout: BatchLayout, rank: int, decode: Callable,
                 collate: Callable, start: int = 0, prefetch: int = 4, read_threads: int = 4):
        self.refs, self.order, self.layout, self.rank = refs, GlobalOrder(len(refs), seed), layout, rank
        self.decode, self.collate, self.start = decode, collate, start
        self.skipped = 0
        self.skip_reasons: list[str] = []
        self._bad: set[int] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, read_threads), thread_name_prefix="genprop-sample-read")
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genprop-batch-reader", daemon=True)
        self._thread.start()

    def _load(self, index: int):
        try:
            return self.decode(read_sample(self.refs[index]))
        except (DataError, ValueError, KeyError, OSError) as e:
            return e

    def _sample(self, index: int) -> dict:
        """The decoded sample ``index`` of the index, or the next readable one after it."""
        for step in range(len(self.refs)):
            i = (index + step) % len(self.refs)
            if i in self._bad:
                continue
            got = self._load(i)
            if not isinstance(got, Exception):
                return got
            with self._lock:  # (reads run on several threads)
                self._bad.add(i)
                self.skipped += 1
                self.skip_reasons.append(f"{self.refs[i].shard}#{self.refs[i].key}: {type(got).__name__}: {got}"[:300])
        raise DataError(self.refs[0].shard, f"no readable sample in the {len(self.refs)} indexed "
                        f"({self.skip_reasons[:3]})")

    def _run(self) -> None:
        try:
            step_start = self.start
            while not self._stop.is_set():
                for micro in range(self.layout.grad_accum):
                    indices = [self.order[p] for p in self.layout.positions(step_start, self.rank, micro)]
                    samples = list(self._pool.map(self._sample, indices))
                    self._put(self.collate(samples))
                step_start += self.layout.global_batch
        except BaseException as e:  # noqa: BLE001 - re-raised in the training thread
            self._put(e)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> tuple[dict, float]:
        """The next micro-batch and the seconds spent waiting for it."""
        t0 = time.perf_counter()
        item = self._queue.get()
        wait = time.perf_counter() - t0
        if isinstance(item, BaseException):
            raise item
        return item, wait

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
