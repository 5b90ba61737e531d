"""Shared fixtures: a local S3 endpoint on 127.0.0.1 (moto's server, real s3fs over HTTP)."""

from __future__ import annotations

import os
import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """Start moto's S3-compatible server on 127.0.0.1 and point genprop's storage at it.

    Yields the endpoint URL. Credentials are dummies; the code path is the same as on AWS.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "GENPROP_S3_ENDPOINT_URL")}
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "GENPROP_S3_ENDPOINT_URL": endpoint,
    })
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def s3_bucket(s3_endpoint, request):
    """A fresh, empty bucket on the local endpoint; yields ``s3://<name>``.

    Created with boto3 (s3fs's mkdir can fail on the location constraint against such endpoints).
    """
    import boto3
    import s3fs

    name = "genprop-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40]
    name = name.rstrip("-")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    s3fs.S3FileSystem.clear_instance_cache()
    yield f"s3://{name}"


def upload_tree(local_dir: str, url: str) -> None:
    """Copy a local directory tree to ``url`` (used by tests to stage fixtures on S3)."""
    from genprop import storage

    for root, _dirs, files in os.walk(local_dir):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), local_dir).replace(os.sep, "/")
            storage.put_file(os.path.join(root, f), storage.join(url, rel))


@pytest.fixture(scope="session")
def ray_local(s3_endpoint):
    """One local Ray runtime for the whole test session (num_cpus=2, no dashboard).

    It depends on ``s3_endpoint`` so workers inherit the endpoint and the dummy credentials.

    Train workers and actor pools in tests take fractional CPUs (e.g. 0.5) so Ray Data always
    keeps a CPU: whole CPUs per worker deadlock on a 2-core machine. Every Ray test also carries a
    ``pytest.mark.timeout``.
    """
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                           if k.startswith(("AWS_", "GENPROP_"))}})
    yield ray
    ray.shutdown()
