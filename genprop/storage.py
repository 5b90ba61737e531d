"""Object-storage access through fsspec: plain paths, ``file://``, ``s3://`` and anything fsspec knows.

S3-compatible endpoints other than AWS are configured the way botocore does it
(``AWS_ENDPOINT_URL``); ``GENPROP_S3_ENDPOINT_URL`` overrides it for genprop alone.
Writes are atomic: a local file is written beside its target and renamed; an object-store
upload is one PUT, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
from typing import Iterator

import fsspec
from fsspec.core import url_to_fs

from genprop.errors import StorageError

# Remote files are copied in chunks of this size (bytes); memory never holds a whole video.
COPY_CHUNK_BYTES = 8 << 20


def _storage_options(url: str) -> dict:
    if url.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("GENPROP_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return {"endpoint_url": endpoint}
    return {}


def _endpoint(url: str) -> str:
    opts = _storage_options(url)
    return opts.get("endpoint_url") or "AWS's default endpoint (no AWS_ENDPOINT_URL set)"


@contextlib.contextmanager
def _remote_errors(url: str) -> Iterator[None]:
    """Object-store connection, credential and permission errors as one :class:`StorageError` line naming the URL,
    the endpoint and what to set (a missing file stays ``FileNotFoundError``; local files are left alone)."""
    if is_local(url):
        yield
        return
    try:
        yield
    except FileNotFoundError:
        raise
    except PermissionError as e:
        raise StorageError(url, f"access denied by {_endpoint(url)} ({_one_line(e)}): check the credentials "
                                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the bucket's "
                                "policy") from e
    except Exception as e:
        if not _is_connection_error(e):
            raise
        raise StorageError(url, f"cannot use the object store at {_endpoint(url)} ({type(e).__name__}: "
                                f"{_one_line(e)}): set AWS_ENDPOINT_URL (or GENPROP_S3_ENDPOINT_URL) to your "
                                "S3-compatible endpoint, and credentials (AWS_ACCESS_KEY_ID / "
                                "AWS_SECRET_ACCESS_KEY or AWS_PROFILE)") from e


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _is_connection_error(e: BaseException) -> bool:
    """botocore's connection and credential errors (and aiohttp's), without importing either for local work."""
    names = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(e).__mro__}
    return any(n in names for n in ("botocore.BotoCoreError", "aiohttp.ClientError", "builtins.ConnectionError"))


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that serves ``url`` and the path inside it.

    Args:
        url (str): plain path, ``file://...``, ``s3://bucket/key`` or any fsspec URL.
    """
    return url_to_fs(str(url), **_storage_options(str(url)))


def is_local(url: str) -> bool:
    """True when ``url`` names a file on this machine (plain path or ``file://``)."""
    fs, _ = filesystem(url)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def local_path(url: str) -> str:
    """The local path of a local ``url`` (strips ``file://``)."""
    fs, path = filesystem(url)
    if not is_local(url):
        raise ValueError(f"{url}: not a local path")
    return path


def absolute(url: str) -> str:
    """``url`` with a relative local path made absolute; URLs with a scheme are returned as they are.

    Jobs resolve paths on the driver: Ray Train workers (and jobs with a ``working_dir``) run in another
    directory, where a relative path names nothing.
    """
    url = str(url)
    if not url or "://" in url:
        return url
    return os.path.abspath(url)


def join(base: str, *parts: str) -> str:
    """Join URL parts with ``/`` (object stores use ``/`` whatever the OS)."""
    out = str(base).rstrip("/")
    for p in parts:
        out = out + "/" + str(p).strip("/")
    return out


def basename(url: str) -> str:
    return posixpath.basename(str(url).rstrip("/"))


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    with _remote_errors(url):
        return fs.exists(path)


def remove(url: str) -> None:
    """Delete one file (no error when it is already gone)."""
    fs, path = filesystem(url)
    with _remote_errors(url):
        if fs.exists(path):
            fs.rm_file(path)


def directory_fingerprint(directory: str) -> str:
    """16 hex digits of every file under a local directory (relative names and bytes), e.g. a model's weights."""
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, directory).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def isdir(url: str) -> bool:
    fs, path = filesystem(url)
    with _remote_errors(url):
        return fs.isdir(path)


def listdir(url: str) -> list[str]:
    """Sorted names (not URLs) of the entries directly under ``url``."""
    fs, path = filesystem(url)
    with _remote_errors(url):
        names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]
    return sorted(n for n in names if n)


def open_url(url: str, mode: str = "rb"):
    """Open ``url`` for reading (a file-like object; use as a context manager)."""
    fs, path = filesystem(url)
    with _remote_errors(url):
        return fs.open(path, mode)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    with _remote_errors(url):
        return fs.cat_file(path)


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of ``url`` (one ranged GET on object storage)."""
    fs, path = filesystem(url)
    with _remote_errors(url):
        return fs.cat_file(path, start=start, end=end)


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    if is_local(url):
        fs.makedirs(path, exist_ok=True)
    # Object stores have no directories; nothing to do.


@contextlib.contextmanager
def _atomic_local(path: str) -> Iterator[str]:
    """A temporary path beside ``path``; renamed onto ``path`` on success, removed on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file 0600; a written output gets the mode any new file gets (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` atomically (temp file + rename locally; one PUT remotely)."""
    fs, path = filesystem(url)
    if is_local(url):
        with _atomic_local(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
    else:
        with _remote_errors(url):
            fs.pipe_file(path, data)


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


def put_file(local: str, url: str) -> None:
    """Copy the local file ``local`` to ``url`` atomically."""
    fs, path = filesystem(url)
    if is_local(url):
        with _atomic_local(path) as tmp:
            shutil.copyfile(local, tmp)
    else:
        with _remote_errors(url):
            fs.put_file(local, path)


@contextlib.contextmanager
def local_copy(url: str, suffix: str = "") -> Iterator[str]:
    """A local path holding the bytes of ``url``.

    A local URL is yielded as is; a remote one is copied in chunks of ``COPY_CHUNK_BYTES`` to a
    temporary file (removed on exit), so readers that need a real file (decord reads a
    file-like object whole into memory) never hold the video in memory.

    Args:
        url (str): the file to read.
        suffix (str, default ""): suffix of the temporary file (decoders sniff extensions).
    """
    if is_local(url):
        yield local_path(url)
        return
    fd, tmp = tempfile.mkstemp(suffix=suffix or os.path.splitext(basename(url))[1], prefix="genprop-")
    try:
        with os.fdopen(fd, "wb") as out, open_url(url, "rb") as src, _remote_errors(url):
            while True:
                chunk = src.read(COPY_CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
