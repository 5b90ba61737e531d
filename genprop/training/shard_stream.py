"""Reading WebDataset shards whole: the shard list of an output and a tar's samples in order.

Training reads samples by their byte ranges (``genprop.training.sample_index``); this streaming reader serves
the checks before a run (``shard_check``), the held-out validation samples and tools that walk every sample.
A member that cannot be read marks its sample bad (reported, not yielded); a shard that cannot be opened raises.
"""

from __future__ import annotations

import tarfile
from typing import Callable, Iterator

from genprop import storage
from genprop.errors import DataError


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
