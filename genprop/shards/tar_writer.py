"""Deterministic tar writing: fixed member metadata, sorted members, one shard visible only when complete.

A sample is turned into its tar blocks where it is made (a worker); a shard is those blocks concatenated in
plan order plus the end-of-archive blocks, exactly what ``tarfile`` itself writes, so any tar reader,
``webdataset`` and ``ray.data.read_webdataset`` read it.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile

from genprop import storage

_BLOCK = tarfile.BLOCKSIZE  # 512
_RECORD = tarfile.RECORDSIZE  # 10240: tarfile pads archives to whole records


def _member_blocks(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    header = info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")
    pad = (-len(data)) % _BLOCK
    return header + data + b"\0" * pad


def sample_tar_bytes(key: str, members: dict[str, bytes]) -> bytes:
    """The tar blocks of one sample: ``<key>.<name>`` for each member, sorted by name, fixed metadata.

    Args:
        key (str): the sample key (no dot).
        members (dict[str, bytes]): member name (e.g. ``"meta.json"``) -> bytes.
    """
    if "." in key or "/" in key:
        raise ValueError(f"sample key {key!r} must not contain '.' or '/'")
    return b"".join(_member_blocks(f"{key}.{name}", members[name]) for name in sorted(members))


def end_of_archive(size: int) -> bytes:
    """What ``tarfile`` appends on close to an archive of ``size`` bytes: two zero blocks, then zeros to a record."""
    total = size + 2 * _BLOCK
    return b"\0" * (2 * _BLOCK + (-total) % _RECORD)


class ShardWriter:
    """Append samples' tar blocks to a local temporary file; :meth:`commit` publishes the shard atomically.

    Use as a context manager: leaving it without :meth:`commit` (an exception, a killed process) deletes the
    temporary file and publishes nothing.

    Args:
        url (str): the shard's final URL.
        tmp_dir (str | None, default None): where the temporary file goes (default: the system's).
    """

    def __init__(self, url: str, tmp_dir: str | None = None):
        self.url = url
        fd, self._path = tempfile.mkstemp(suffix=".tar", prefix="genprop-shard-", dir=tmp_dir)
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self.samples = 0

    def add(self, blocks: bytes) -> None:
        """Append one sample's blocks (from :func:`sample_tar_bytes`)."""
        self._file.write(blocks)
        self.size += len(blocks)
        self.samples += 1

    def commit(self) -> int:
        """Finish the archive and put it at :attr:`url` (one atomic write); returns its size in bytes."""
        self._file.write(end_of_archive(self.size))
        self._file.close()
        storage.put_file(self._path, self.url)
        return os.path.getsize(self._path)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_tar_members(data: bytes) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every member of a tar held in memory (for tests and tools)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
