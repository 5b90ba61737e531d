"""Per-worker streaming of WebDataset shards: own shards, a seeded shuffle buffer, a resumable position.

Each training worker reads its own shards straight from object storage (no Ray here; see
``docs/design-decisions.md``, Training, for why this beat ``ray.data.read_webdataset``):

- epoch ``e`` orders the shard list with a generator seeded by ``(seed, e)``; worker ``r`` of ``W`` takes
  shards ``r, r + W, ...`` of that order (or, with fewer shards than workers, every shard and the samples
  ``i`` with ``i % W == r``);
- a shuffle buffer (seeded by ``(seed, e, r)``) mixes samples across the worker's shards;
- the stream never ends (epochs follow each other), so every worker makes the same number of steps;
- :class:`StreamPosition` ``(epoch, offset)`` counts the raw samples yielded in the current epoch; a stream
  started at a position skips that many samples *before decoding them* and then continues exactly as the
  uninterrupted stream would.

A tar member that cannot be read, or a sample that does not decode, is skipped and counted (``skipped``);
a shard that cannot be opened at all raises (the run must not silently lose data).
"""

from __future__ import annotations

import random
import tarfile
from dataclasses import dataclass
from typing import Callable, Iterator

from genprop import storage
from genprop.errors import DataError


@dataclass(frozen=True)
class StreamPosition:
    """Where a worker's stream is: ``offset`` samples already yielded in ``epoch``."""

    epoch: int = 0
    offset: int = 0


def list_shards(url: str) -> list[str]:
    """Sorted URLs of the ``shard-*.tar`` files under ``<url>/shards``.

    Args:
        url (str): a shard output root (what ``make_shards`` wrote).

    Raises:
        DataError: no shards there.
    """
    root = storage.join(url, "shards")
    try:
        names = storage.listdir(root)
    except FileNotFoundError:
        names = []
    shards = [storage.join(root, n) for n in names if n.startswith("shard-") and n.endswith(".tar")]
    if not shards:
        raise DataError(url, "no training shards (expected shards/shard-*.tar written by make_shards)")
    return shards


def iter_tar_samples(url: str, on_skip: Callable[[str, str], None] | None = None) -> Iterator[dict]:
    """Samples of one WebDataset tar as ``{"__key__": key, "<member>": bytes, ...}`` in tar order.

    Members are grouped by the key before the first dot (keys have none). A member whose bytes cannot be
    read marks its sample bad; a bad sample is reported to ``on_skip(key, reason)`` and not yielded.

    Args:
        url (str): the tar's URL.
        on_skip (callable | None): called with (key, reason) for each skipped sample.
    """
    key, sample, bad = None, {}, None

    def flush():
        if key is None:
            return None
        if bad is not None:
            if on_skip:
                on_skip(key, bad)
            return None
        return {"__key__": key, **sample}

    try:
        f = storage.open_url(url, "rb")
    except (OSError, FileNotFoundError) as e:
        raise DataError(url, f"cannot open shard ({e})") from e
    with f, tarfile.open(fileobj=f, mode="r|") as tar:
        try:
            for info in tar:
                if not info.isfile():
                    continue
                k, _, member = info.name.partition(".")
                if k != key:
                    done = flush()
                    if done is not None:
                        yield done
                    key, sample, bad = k, {}, None
                try:
                    data = tar.extractfile(info).read()
                    if len(data) != info.size:
                        raise tarfile.ReadError(f"member {info.name} truncated")
                    sample[member] = data
                except (tarfile.TarError, OSError) as e:
                    bad = f"unreadable member {info.name}: {e}"
        except (tarfile.TarError, OSError) as e:  # the archive itself is cut or garbled from here on
            bad = bad or f"unreadable tar after {key}: {e}"
        done = flush()
        if done is not None:
            yield done


class ShardStream:
    """The endless, deterministic sample stream of one worker.

    Args:
        shards (list[str]): every shard URL (the same list on every worker).
        rank (int): this worker's rank; world_size (int): workers.
        seed (int): the run's seed.
        shuffle_buffer (int, default 16): samples mixed at a time (1 = shard order).
        decode (callable): raw sample -> decoded sample; a ``DataError``/``ValueError``/``KeyError`` skips it.
        start (StreamPosition): where to start (from a checkpoint).
    """

    def __init__(self, shards: list[str], rank: int, world_size: int, seed: int, decode: Callable[[dict], dict],
                 shuffle_buffer: int = 16, start: StreamPosition = StreamPosition()):
        if not shards:
            raise ValueError("no shards to stream")
        self.shards, self.rank, self.world = list(shards), rank, world_size
        self.seed, self.decode, self.buffer = seed, decode, max(1, shuffle_buffer)
        self.position = start
        self.skipped = 0
        self.skip_reasons: list[str] = []

    def _on_skip(self, key: str, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons.append(f"{key}: {reason}"[:300])

    def _epoch_raw(self, epoch: int) -> Iterator[dict]:
        """Raw samples of ``epoch`` for this worker, shuffled, before decoding."""
        order = list(self.shards)
        random.Random(f"{self.seed}/{epoch}").shuffle(order)
        split_samples = len(order) < self.world
        mine = order if split_samples else order[self.rank::self.world]
        rng = random.Random(f"{self.seed}/{epoch}/{self.rank}")
        buf: list[dict] = []
        i = 0
        for url in mine:
            for s in iter_tar_samples(url, self._on_skip):
                if split_samples and i % self.world != self.rank:
                    i += 1
                    continue
                i += 1
                buf.append(s)
                if len(buf) >= self.buffer:
                    yield buf.pop(rng.randrange(len(buf)))
        while buf:
            yield buf.pop(rng.randrange(len(buf)))

    def __iter__(self) -> Iterator[tuple[StreamPosition, dict]]:
        """Yields ``(position after this sample, decoded sample)``; a checkpoint stores the position of the
        last sample that was trained on (a prefetching reader runs ahead of it)."""
        epoch, skip = self.position.epoch, self.position.offset
        while True:
            offset, yielded = 0, 0
            for raw in self._epoch_raw(epoch):
                offset += 1
                if offset <= skip:
                    continue  # resumed: these were consumed before the checkpoint
                self.position = StreamPosition(epoch, offset)
                try:
                    sample = self.decode(raw)
                except (DataError, ValueError, KeyError, OSError) as e:
                    self._on_skip(raw.get("__key__", "?"), f"{type(e).__name__}: {e}")
                    continue
                yielded += 1
                yield self.position, sample
            if yielded == 0 and skip == 0:
                raise DataError(",".join(self.shards[:3]), f"worker {self.rank} found no readable sample in a "
                                f"whole epoch ({self.skipped} skipped: {self.skip_reasons[:3]})")
            epoch, skip = epoch + 1, 0
            self.position = StreamPosition(epoch, 0)
