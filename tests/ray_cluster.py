"""A local `ray start --head` cluster for tests that submit jobs as a user would (`ray job submit`).

Ray 2.60 with a `~/.ray/auth_token` present starts clusters with token authentication; this dev head runs
with `RAY_AUTH_MODE=disabled` on 127.0.0.1 and is stopped by the PIDs of its own `--temp-dir` (`ray stop`
would stop every Ray process on the machine, other test sessions' included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_pids(temp_dir: str) -> list[int]:
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


@contextlib.contextmanager
def local_head(num_cpus: int = 2, extra_env: dict | None = None):
    """Start a head node; yields ``(dashboard_address, env)`` for ``ray job submit``; stops it by PID on exit.

    Args:
        num_cpus (int, default 2): CPUs the head offers.
        extra_env (dict | None): environment for the cluster (e.g. S3 endpoint variables).
    """
    temp_dir = tempfile.mkdtemp(prefix="gps-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port, dash = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PATH=BIN + os.pathsep + env.get("PATH", ""), RAY_AUTH_MODE="disabled", GENPROP_TEST_CLUSTER=temp_dir,
               **(extra_env or {}))
    start = [os.path.join(BIN, "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--num-cpus={num_cpus}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
             "--include-dashboard=true", f"--temp-dir={temp_dir}", "--disable-usage-stats",
             f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
             f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
             f"--ray-client-server-port={free_port()}"]
    try:
        subprocess.run(start, env=env, check=True, capture_output=True, timeout=180)
        yield f"http://127.0.0.1:{dash}", env
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in cluster_pids(temp_dir):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(2)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not cluster_pids(temp_dir)


def copy_project(repo: str, dest) -> str:
    """The working dir uploaded with a job: the project's packages without its .venv."""
    for pkg in ("genprop", "pipelines", "jobs"):
        shutil.copytree(os.path.join(repo, pkg), os.path.join(str(dest), pkg),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(dest)
