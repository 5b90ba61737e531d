"""The layout of a shard output and its resume rules.

    <output>/config.json                 the config and its hash (written first; a different hash is refused)
    <output>/shards/shard-000000.tar     WebDataset shards (each appears whole, or not at all)
    <output>/_manifest/shard-000000.parquet   the sample rows of one finished shard (written after its tar)
    <output>/manifest.parquet            every video and sample row
    <output>/_SUCCESS                    JSON summary, written last
"""

from __future__ import annotations

import dataclasses
import json

from genprop import storage
from genprop.errors import GenPropError
from genprop.shards.config import ShardsConfig, config_hash


class ConfigMismatchError(GenPropError):
    """The output already holds shards made with another config; they are not mixed."""


class ShardOutput:
    """Paths and resume state of one output URL.

    Args:
        url (str): the output root.
    """

    def __init__(self, url: str):
        if not url:
            raise ValueError("an output URL is required")
        self.url = str(url).rstrip("/")

    def shard_url(self, index: int) -> str:
        return storage.join(self.url, "shards", f"shard-{index:06d}.tar")

    def part_url(self, index: int) -> str:
        return storage.join(self.url, "_manifest", f"shard-{index:06d}.parquet")

    @property
    def config_url(self) -> str:
        return storage.join(self.url, "config.json")

    @property
    def manifest_url(self) -> str:
        return storage.join(self.url, "manifest.parquet")

    @property
    def success_url(self) -> str:
        return storage.join(self.url, "_SUCCESS")

    def stored_hash(self) -> str | None:
        """The config hash the output was started with, or None for a new output."""
        try:
            return json.loads(storage.read_text(self.config_url))["config_hash"]
        except FileNotFoundError:
            return None

    def claim(self, config: ShardsConfig) -> str:
        """Check the output against ``config`` (writing ``config.json`` if new); returns the config hash.

        Raises:
            ConfigMismatchError: the output was made with a config of another hash.
        """
        h = config_hash(config)
        stored = self.stored_hash()
        if stored is not None and stored != h:
            raise ConfigMismatchError(
                f"{self.url} holds shards of config {stored}, not {h}: use another output, or remove it first")
        if stored is None:
            storage.write_text(self.config_url, json.dumps(
                {"config_hash": h, "config": dataclasses.asdict(config)}, indent=1, sort_keys=True) + "\n")
        return h

    def complete(self, h: str) -> dict | None:
        """The ``_SUCCESS`` summary when the output is complete for hash ``h``, else None."""
        try:
            summary = json.loads(storage.read_text(self.success_url))
        except FileNotFoundError:
            return None
        return summary if summary.get("config_hash") == h else None

    def done_shards(self) -> set[int]:
        """Indices of finished shards (their manifest part exists, which is written after the tar)."""
        try:
            names = storage.listdir(storage.join(self.url, "_manifest"))
        except FileNotFoundError:
            return set()
        return {int(n[len("shard-"):-len(".parquet")]) for n in names
                if n.startswith("shard-") and n.endswith(".parquet")}
