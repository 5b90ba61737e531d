"""Helpers shared by job entrypoints: finding packaged configs, logging set-up."""

from __future__ import annotations

import logging
import os
from importlib import resources

from genprop import storage
from genprop.dag.config import SECTIONS  # the sections of a deployment YAML: one per DAG stage, plus dag:


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



def load_section(cls, url: str, section: str, overrides: dict | None = None):
    """Load stage ``section`` of a deployment YAML (``world:``, ``shards:``, ``train:``, ``propagate:``, ...) into dataclass ``cls``.

    A deployment file holds one section per stage, so one file describes a whole run; a flat file (the
    fields of ``cls`` at top level) still loads as that stage's config.

    Args:
        cls (type): the stage's config dataclass.
        url (str): the YAML file.
        section (str): the stage's section name.
        overrides (dict | None): values that win over the file (None values ignored).
    """
    from genprop import configs

    data = configs.read_yaml(url)
    where = url
    if isinstance(data, dict) and any(k in data for k in SECTIONS):
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise configs.ConfigError(f"{url}: unknown section(s) {unknown}; known sections: {list(SECTIONS)}")
        data, where = data.get(section) or {}, f"{url}:{section}"
    if overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return configs.from_dict(cls, data, where=where)


def has_section(url: str, section: str) -> bool:
    """True when the YAML at ``url`` is a deployment file with a ``section:`` section."""
    from genprop import configs

    data = configs.read_yaml(url)
    return isinstance(data, dict) and isinstance(data.get(section), dict)
