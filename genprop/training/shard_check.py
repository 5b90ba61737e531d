"""Checks a shard output before a training run starts: shards exist, were made for this backbone and shape.

Run on the driver, so a wrong ``--shards`` fails in seconds with a message that names the difference,
not after the workers have built their models.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass

from genprop import configs, storage
from genprop.errors import DataError
from genprop.shards import ShardsConfig, backbone_hash
from genprop.training.data import decode_training_sample
from genprop.training.shard_stream import iter_tar_samples, list_shards


class ShardMismatchError(DataError):
    """Shards made for another backbone, clip or latent shape than the run expects."""


def latent_shape(config: ShardsConfig) -> tuple[int, int, int, int]:
    """(T_lat, C, h, w) of the latents a shard config produces, from the backbone's geometry (no weights read)."""
    bb = config.backbone_config()
    t, h, w = config.frames, config.height, config.width
    if bb.latent_map == "pixel_unshuffle":
        f = bb.unshuffle_factor
        return t, 3 * f * f, h // f, w // f
    vae = bb.vae or {}
    if config.backbone_kind == "wan":
        s = 2 ** (len(vae.get("dim_mult", [1, 2, 4, 4])) - 1)
        t_pad = t if (t - 1) % 4 == 0 else t + (4 - (t - 1) % 4)
        return (t_pad - 1) // 4 + 1, vae.get("z_dim", 16), h // s, w // s
    s = 2 ** (len(vae.get("block_out_channels", [128, 256, 512, 512])) - 1)
    return t, vae.get("latent_channels", 4), h // s, w // s


@dataclass(frozen=True)
class ShardSet:
    """What a checked shard output holds.

    Attributes:
        url (str): the output root; shards (list[str]): every shard URL (sorted).
        config (ShardsConfig): the config they were made with; backbone_hash (str): its backbone's hash.
        latent_shape (tuple): (T_lat, C, h, w) of every sample's latents.
    """

    url: str
    shards: list
    config: ShardsConfig
    backbone_hash: str
    latent_shape: tuple


def _describe(c: ShardsConfig) -> str:
    return f"{c.backbone_kind} backbone (hash {backbone_hash(c)}), {c.frames} frames {c.height}x{c.width}"


def _readable_samples(shard: str, skipped: list[str]):
    """The raw samples of ``shard``; a shard that is not a tar at all ends them with a note in ``skipped`` (the
    sample index, built next, refuses it by name)."""
    try:
        yield from iter_tar_samples(shard, lambda k, r: skipped.append(f"{k}: {r}"))
    except (tarfile.TarError, OSError) as e:
        skipped.append(f"{shard}: {e}")


def check_shards(url: str, expected: ShardsConfig | None = None) -> ShardSet:
    """Open a shard output and check it before training.

    Args:
        url (str): the shard output root.
        expected (ShardsConfig | None): the deployment's shard config; its backbone and clip shape must match.

    Raises:
        DataError: no shards or no readable sample at ``url``.
        ShardMismatchError: another backbone / shape than ``expected``, or samples that disagree with their config.
    """
    shards = list_shards(url)
    try:
        stored = json.loads(storage.read_text(storage.join(url, "config.json")))
    except FileNotFoundError:
        raise DataError(url, "config.json is missing: not an output of make_shards") from None
    config = configs.from_dict(ShardsConfig, stored["config"], where=storage.join(url, "config.json"))
    if expected is not None:
        same = (backbone_hash(expected) == backbone_hash(config)
                and (expected.frames, expected.height, expected.width) == (config.frames, config.height, config.width))
        if not same:
            raise ShardMismatchError(url, f"shards were made for a {_describe(config)}, but this run is configured "
                                          f"for a {_describe(expected)}")
    shape = latent_shape(config)
    skipped: list[str] = []
    for shard in shards:
        for raw in _readable_samples(shard, skipped):
            try:
                sample = decode_training_sample(raw)
            except (DataError, ValueError, KeyError, OSError) as e:
                skipped.append(f"{raw.get('__key__')}: {e}")
                continue
            meta = sample["meta"]
            if meta.get("backbone_hash") != backbone_hash(config):
                raise ShardMismatchError(shard, f"sample {sample['key']} was encoded by backbone "
                                                f"{meta.get('backbone')} hash {meta.get('backbone_hash')}, not the "
                                                f"{_describe(config)} of config.json")
            got = tuple(sample["target_latents"].shape)
            if got != shape or tuple(sample["sce_latents"].shape) != shape:
                raise ShardMismatchError(shard, f"sample {sample['key']} has latents {got}, expected {shape} for a "
                                                f"{_describe(config)}")
            return ShardSet(url=url, shards=shards, config=config, backbone_hash=backbone_hash(config),
                            latent_shape=shape)
    raise DataError(url, f"no readable sample in {len(shards)} shards ({skipped[:3]})")

