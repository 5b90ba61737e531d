"""Helpers shared by job entrypoints: finding packaged configs, logging set-up."""

from __future__ import annotations

import logging
import os
from importlib import resources

from genprop import storage


def resolve_config(path: str) -> str:
    """The config URL to read: ``path`` itself if it exists, else a config shipped in ``jobs/configs``.

    Jobs run from any directory (a Docker image, a KubeRay pod), so ``world-tiny.yaml`` or
    ``jobs/configs/world-tiny.yaml`` find the packaged file wherever the job starts.

    Args:
        path (str): a URL, a local path, or the name of a packaged config.
    """
    if "://" in path or os.path.exists(path):
        return path
    packaged = resources.files("jobs") / "configs" / os.path.basename(path)
    if packaged.is_file():
        return str(packaged)
    if storage.exists(path):
        return path
    raise FileNotFoundError(f"{path}: no such config file (nor a packaged jobs/configs/{os.path.basename(path)})")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
