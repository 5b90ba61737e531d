"""Helpers for the training tests: shards made by the shard job on the local S3 endpoint, a local copy."""

from __future__ import annotations

import os

from genprop import storage


def make_bucket(endpoint: str, name: str) -> str:
    """Create bucket ``name`` on the local endpoint (boto3: s3fs's mkdir fails on the location constraint)."""
    import boto3
    import s3fs

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    s3fs.S3FileSystem.clear_instance_cache()
    return f"s3://{name}"


def download_tree(url: str, local_dir: str) -> str:
    """Copy every object under ``url`` to ``local_dir``; returns ``local_dir``."""
    fs, root = storage.filesystem(url)
    for path in fs.find(root):
        rel = path[len(root):].lstrip("/")
        os.makedirs(os.path.dirname(os.path.join(local_dir, rel)), exist_ok=True)
        fs.get_file(path, os.path.join(local_dir, rel))
    return local_dir
