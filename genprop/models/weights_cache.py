"""Backbone weights from a local directory, a hub id, or an object-store URL (copied once per node).

A URL (``s3://...``, any remote fsspec URL) is copied into ``~/.cache/genprop/weights/<sha256(url)[:16]>``
under a file lock, so the workers of one node download it once and the others wait; a finished copy
carries a ``.complete`` marker and is reused by later runs. Local directories and hub ids are returned
unchanged (diffusers' ``from_pretrained`` reads them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from genprop import storage


def default_cache_dir() -> str:
    """``$GENPROP_CACHE`` or ``~/.cache/genprop``, plus ``/weights``."""
    root = os.environ.get("GENPROP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genprop")
    return os.path.join(root, "weights")


def resolve_pretrained(ref: str | None, cache_dir: str | None = None) -> str | None:
    """A path or hub id ``from_pretrained`` can read for ``ref``.

    Args:
        ref (str | None): a local directory, a hub id (``org/name``), or a remote URL of a pretrained folder.
        cache_dir (str | None): where remote folders are copied (default :func:`default_cache_dir`).
    """
    if not ref or "://" not in ref or storage.is_local(ref):
        return storage.local_path(ref) if ref and "://" in ref else ref
    from filelock import FileLock

    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(cache_dir, hashlib.sha256(ref.rstrip("/").encode()).hexdigest()[:16])
    with FileLock(target + ".lock"):
        if os.path.isfile(os.path.join(target, ".complete")):
            return target
        fs, root = storage.filesystem(ref)
        files = [p for p in fs.find(root) if not p.endswith("/")]
        if not files:
            raise FileNotFoundError(f"{ref}: no files to download")
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir)
        try:
            for path in files:
                rel = path[len(root.rstrip("/")):].lstrip("/")
                os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
                fs.get_file(path, os.path.join(tmp, rel))
            with open(os.path.join(tmp, ".complete"), "w") as f:
                f.write(ref + "\n")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
