"""`genprop s3-server`: a local S3-compatible endpoint a user starts by hand; genprop.storage works against it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.ray_cluster import free_port


@pytest.mark.timeout(120)
def test_s3_server_serves_genprop_storage_until_terminated(monkeypatch):
    port = free_port()
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "genprop"), "s3-server", "--port",
                             str(port), "--bucket", "dev-bucket"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines and lines[-1] == "ready", lines
        exports = dict(l[len("export "):].split("=", 1) for l in lines if l.startswith("export "))
        assert exports["GENPROP_S3_ENDPOINT_URL"] == exports["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        for k, v in exports.items():
            monkeypatch.setenv(k, v)
        import s3fs

        from genprop import storage

        s3fs.S3FileSystem.clear_instance_cache()
        storage.write_text("s3://dev-bucket/dir/hello.txt", "hi from genprop")
        assert storage.read_text("s3://dev-bucket/dir/hello.txt") == "hi from genprop"
        assert storage.listdir("s3://dev-bucket/dir") == ["hello.txt"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "s3-server: stopped" in out
    s3fs.S3FileSystem.clear_instance_cache()
