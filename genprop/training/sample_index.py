"""Where every training sample lies: ``(shard, key, byte range)``, and reading one sample by its range.

A shard is a tar of whole samples (``genprop.shards.tar_writer``): a sample's members are contiguous tar blocks,
so one ranged read returns it whole. The index comes from each shard's manifest part
(``<root>/_manifest/shard-NNNNNN.parquet``: the shard's rows in plan order, the ok ones with the bytes their blocks
take), so building it reads no tar; a shard without its part (written by another tool) is indexed from its tar
headers. Random access is what lets every step's global batch be the same samples for any number of workers
(:mod:`genprop.training.global_batches`) while each sample is read once, by the worker that trains on it.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from genprop import storage
from genprop.errors import DataError
from genprop.shards.manifest import read_manifest


@dataclass(frozen=True)
class SampleRef:
    """One sample's place: ``size`` bytes at ``offset`` of the tar ``shard``."""

    shard: str
    key: str
    offset: int
    size: int


def manifest_part_url(shard_url: str) -> str:
    """``<root>/_manifest/shard-N.parquet`` for ``<root>/shards/shard-N.tar``."""
    root, _, name = shard_url.rstrip("/").rpartition("/shards/")
    return storage.join(root, "_manifest", name.replace(".tar", ".parquet"))


def index_from_manifest(shard_url: str, part: bytes) -> list[SampleRef]:
    """The samples of ``shard_url`` from its manifest part (Parquet bytes): the ok rows in plan order, end to end."""
    rows = [r for r in read_manifest(part).to_pylist() if r["kind"] == "sample" and r["status"] == "ok"]
    rows.sort(key=lambda r: r["position"])
    refs, offset = [], 0
    for r in rows:
        refs.append(SampleRef(shard_url, r["key"], offset, int(r["bytes"])))
        offset += int(r["bytes"])
    return refs


def index_from_tar_headers(shard_url: str) -> list[SampleRef]:
    """The samples of ``shard_url`` from its tar headers (a seekable read that skips the payloads)."""
    spans: dict[str, list[int]] = {}
    with storage.open_url(shard_url, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
        for info in tar:  # a seekable read: the headers only, the payloads are skipped
            if not info.isfile():
                continue
            end = info.offset_data + info.size + (-info.size) % tarfile.BLOCKSIZE
            key = info.name.partition(".")[0]
            span = spans.setdefault(key, [info.offset, end])
            span[1] = end
    return [SampleRef(shard_url, k, a, b - a) for k, (a, b) in spans.items()]


def index_shards(shards: list[str]) -> list[SampleRef]:
    """Every sample of ``shards``, shard by shard in the given order, each in tar order.

    Args:
        shards (list[str]): shard URLs (``<root>/shards/shard-N.tar``).

    Raises:
        DataError: a shard that cannot be indexed (no manifest part and unreadable headers), or no sample at all.
    """
    refs: list[SampleRef] = []
    for url in shards:
        try:
            part = storage.read_bytes(manifest_part_url(url))
        except FileNotFoundError:
            part = None
        try:
            refs += index_from_manifest(url, part) if part is not None else index_from_tar_headers(url)
        except (OSError, tarfile.TarError, KeyError, ValueError) as e:
            raise DataError(url, f"cannot index the shard ({type(e).__name__}: {e})") from e
    if not refs:
        raise DataError(",".join(shards[:3]), "the shards hold no sample")
    return refs


def read_sample(ref: SampleRef) -> dict:
    """The raw sample ``{"__key__": key, "<member>": bytes, ...}`` at ``ref`` (one ranged read).

    Raises:
        DataError: the range cannot be read, is not whole tar members, or holds another sample.
    """
    try:
        blocks = storage.read_range(ref.shard, ref.offset, ref.offset + ref.size)
    except OSError as e:
        raise DataError(ref.shard, f"cannot read sample {ref.key} ({e})") from e
    if len(blocks) != ref.size:
        raise DataError(ref.shard, f"sample {ref.key}: {len(blocks)} of {ref.size} bytes (the shard is cut)")
    sample: dict = {"__key__": ref.key}
    try:
        with tarfile.open(fileobj=io.BytesIO(blocks + b"\0" * (2 * tarfile.BLOCKSIZE)), mode="r:") as tar:
            for info in tar:
                key, _, member = info.name.partition(".")
                if key != ref.key:
                    raise DataError(ref.shard, f"bytes {ref.offset}+{ref.size} hold {info.name}, not sample {ref.key}")
                data = tar.extractfile(info).read()
                if len(data) != info.size:
                    raise tarfile.ReadError(f"member {info.name} truncated")
                sample[member] = data
    except tarfile.TarError as e:
        raise DataError(ref.shard, f"sample {ref.key} at byte {ref.offset}: not whole tar members ({e})") from e
    if len(sample) == 1:
        raise DataError(ref.shard, f"sample {ref.key} at byte {ref.offset}: no member")
    return sample
