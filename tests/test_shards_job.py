"""The shard job as a user runs it: `genprop shards`, and `ray job submit` to a local `ray start --head`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from genprop import storage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_genprop_shards_forwards_every_argument(monkeypatch):
    from genprop import cli

    seen = {}
    monkeypatch.setattr(cli, "run_job", lambda module, argv: seen.update(module=module, argv=list(argv)) or 0)
    assert cli.main(["shards", "--config", "tiny.yaml", "--output", "/x", "--limit", "2"]) == 0
    assert seen == {"module": "jobs.make_shards", "argv": ["--config", "tiny.yaml", "--output", "/x", "--limit", "2"]}
    cli.main(["shards", "--help"])
    assert seen["argv"] == ["--help"]


def test_job_refuses_a_missing_output(capsys):
    from jobs.make_shards import main

    assert main(["--config", "tiny.yaml"]) == 2
    assert "output URL is required" in capsys.readouterr().err


def _cluster_pids(temp_dir: str) -> list[int]:
    """Processes of the cluster started with ``--temp-dir temp_dir`` (every Ray process names its session dir)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().decode(errors="replace")
        except OSError:
            continue
        if temp_dir in cmd or f"GENPROP_TEST_CLUSTER={temp_dir}" in env:
            pids.append(int(pid))
    return pids


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_job_submit_against_a_local_head(tmp_path):
    from tests.shards_helpers import write_world_with_bad_videos

    world = write_world_with_bad_videos(str(tmp_path / "world"))
    out = str(tmp_path / "out")
    work = tmp_path / "job"  # the working dir uploaded with the job: the project without its .venv
    for pkg in ("genprop", "pipelines", "jobs"):
        shutil.copytree(os.path.join(REPO, pkg), work / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    temp_dir = tempfile.mkdtemp(prefix="gps-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port, dash = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # A dev cluster on 127.0.0.1: no token auth (a user's ~/.ray/auth_token must not be required here).
    env.update(PATH=BIN + os.pathsep + env.get("PATH", ""), RAY_AUTH_MODE="disabled",
               GENPROP_TEST_CLUSTER=temp_dir)
    start = [os.path.join(BIN, "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--num-cpus=2", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
             f"--temp-dir={temp_dir}", "--disable-usage-stats", f"--dashboard-agent-listen-port={_free_port()}",
             f"--dashboard-agent-grpc-port={_free_port()}", f"--metrics-export-port={_free_port()}",
             f"--runtime-env-agent-port={_free_port()}", f"--ray-client-server-port={_free_port()}"]
    try:
        subprocess.run(start, env=env, check=True, capture_output=True, timeout=180)
        submit = [os.path.join(BIN, "ray"), "job", "submit", "--address", f"http://127.0.0.1:{dash}",
                  "--working-dir", str(work), "--", "python", "-m", "jobs.make_shards", "--config", "tiny.yaml",
                  "--input", world, "--output", out, "--limit", "2"]
        t0 = time.monotonic()
        res = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=420)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "succeeded" in res.stdout + res.stderr, res.stdout[-2000:]
        assert "make_shards: 2 videos in" in res.stdout, res.stdout[-2000:]
        summary = json.loads(storage.read_text(out + "/_SUCCESS"))
        assert summary["videos_in"] == 2 and summary["samples_out"] >= 1, summary
        assert storage.exists(out + "/shards/shard-000000.tar")
        print(f"ray job submit took {time.monotonic() - t0:.1f} s")
    finally:
        # Stop only this cluster: `ray stop` would stop every Ray process on the machine.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _cluster_pids(temp_dir):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(2)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not _cluster_pids(temp_dir)
