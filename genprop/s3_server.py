"""A local S3-compatible endpoint for development: ``genprop s3-server [--port 9000] [--bucket NAME]``.

The same server the tests use (moto's ``ThreadedMotoServer``), on 127.0.0.1 only, in memory: everything
written to it is gone when it stops. It lets a user try ``s3://`` URLs through the whole DAG without a cloud
account; the code path (s3fs + ``GENPROP_S3_ENDPOINT_URL``) is the one used against AWS.
"""

from __future__ import annotations

import signal
import threading

# Dummy credentials: moto accepts any, and botocore refuses to sign without some.
DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def env_for(endpoint: str) -> dict[str, str]:
    """The environment a client needs to use ``endpoint`` (genprop's and any AWS SDK's variable)."""
    return {"AWS_ENDPOINT_URL": endpoint, "GENPROP_S3_ENDPOINT_URL": endpoint, **DUMMY_ENV}


def serve(port: int = 9000, buckets: list[str] | tuple[str, ...] = ("genprop",), host: str = "127.0.0.1",
          stop: threading.Event | None = None) -> int:
    """Start the endpoint, create ``buckets``, print the variables to export, and serve until interrupted.

    Args:
        port (int, default 9000): TCP port on ``host``.
        buckets (list[str]): buckets to create.
        host (str, default 127.0.0.1): listen address (loopback: the server has no authentication).
        stop (threading.Event | None): set it to stop serving (tests); SIGINT/SIGTERM also stop.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port)
    server.start()
    endpoint = f"http://{host}:{port}"
    stop = stop or threading.Event()
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name=DUMMY_ENV["AWS_DEFAULT_REGION"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        for b in buckets:
            client.create_bucket(Bucket=b)
        print(f"S3-compatible endpoint on {endpoint} (in memory; stops with Ctrl-C). Buckets: "
              + ", ".join(f"s3://{b}" for b in buckets))
        print("Export these in the shell that runs genprop:")
        for k, v in env_for(endpoint).items():
            print(f"export {k}={v}")
        print("ready", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            if threading.current_thread() is threading.main_thread():
                signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    print("s3-server: stopped", flush=True)
    return 0
