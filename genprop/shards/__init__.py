"""Training shards (library side, no Ray): config, sample plan, sample encoding, deterministic tars, manifest.

The Ray dataflow that drives these is ``pipelines/make_shards.py``; the entrypoint ``jobs/make_shards.py``.
"""

from genprop.shards.config import ShardsConfig, backbone_hash, config_hash
from genprop.shards.manifest import SCHEMA, manifest_table, read_manifest
from genprop.shards.output import ConfigMismatchError, ShardOutput
from genprop.shards.plan import PlannedSample, describe_video, estimate_sample_bytes, plan_samples
from genprop.shards.sample import decode_sample, sample_key, unpack_mask
from genprop.shards.tar_writer import ShardWriter, sample_tar_bytes

__all__ = [
    "ConfigMismatchError", "PlannedSample", "SCHEMA", "ShardOutput", "ShardWriter", "ShardsConfig", "backbone_hash",
    "config_hash", "decode_sample", "describe_video", "estimate_sample_bytes", "manifest_table", "plan_samples",
    "read_manifest", "sample_key", "sample_tar_bytes", "unpack_mask",
]
