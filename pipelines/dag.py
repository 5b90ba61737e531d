"""Executors for the DAG (``genprop.dag.run_dag``): each stage in this process on a local Ray runtime, or each
stage as a Ray job on a cluster through the Ray Jobs API.

Both run the same job entrypoints (``python -m jobs.<stage> ...``) with the same arguments, so a stage that
works in ``make demo`` works on a cluster.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import time
from typing import Callable

from genprop.dag.plan import PlannedStage

# Never uploaded with a job: environments, outputs, VCS data, local weights, wheels, caches. Ray caps a
# working_dir upload (hundreds of MiB), and none of these belong on a cluster node.
WORKING_DIR_EXCLUDES = [".venv", "venv", ".git", "demo-out", "models", ".whl", "*.whl", "__pycache__", "*.pyc",
                        ".pytest_cache", "*.egg-info", "build", "dist", "tmp"]

# Environment passed on to every submitted stage: where the S3-compatible endpoint is (no credentials;
# the cluster has its own).
FORWARDED_ENV = ("GENPROP_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "GENPROP_CLIP_PATH")


def project_root() -> str:
    """The source tree that holds ``genprop/``, ``pipelines/`` and ``jobs/`` (the Ray job's working dir).

    Raises:
        FileNotFoundError: genprop is installed without its source tree (then submit with ``--working-dir none``
            to a cluster whose image has genprop installed).
    """
    import pipelines

    # Located from pipelines/ (its sibling jobs/ sits above it in the layers and is not imported here).
    root = os.path.dirname(os.path.dirname(os.path.abspath(pipelines.__file__)))
    if not all(os.path.isfile(os.path.join(root, pkg, "__init__.py")) for pkg in ("genprop", "pipelines", "jobs")):
        raise FileNotFoundError(f"{root}: not the genprop source tree (genprop/, pipelines/, jobs/); run from a "
                                "checkout (pip install -e .) or pass --working-dir none for an image with genprop")
    return root


class LocalExecutor:
    """Runs each stage's ``main(argv)`` in this process, on one local Ray runtime started on first use.

    Args:
        num_cpus (int | None): CPUs of the local runtime (None = Ray's default, all of them).
    """

    def __init__(self, num_cpus: int | None = None):
        self.num_cpus = num_cpus

    def __call__(self, p: PlannedStage) -> int:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=True)
        try:
            return int(importlib.import_module(p.stage.module).main(list(p.argv)) or 0)
        except SystemExit as e:  # argparse errors exit; a stage's bad flags are that stage's failure
            return e.code if isinstance(e.code, int) else 1


class RayJobsExecutor:
    """Submits each stage as a Ray job (``JobSubmissionClient``), streams its logs, waits for it to end.

    Args:
        address (str): the cluster's dashboard address, e.g. ``http://head:8265``.
        working_dir (str | None): uploaded as the job's working directory (None = the image's installed genprop).
        poll_s (float): seconds between status/log polls.
        timeout_s (float): a stage running longer is stopped and fails.
        log (Callable[[str], None]): where progress and job log lines go.
    """

    def __init__(self, address: str, working_dir: str | None, poll_s: float = 2.0, timeout_s: float = 21600.0,
                 log: Callable[[str], None] = print):
        from ray.job_submission import JobSubmissionClient

        self.client = JobSubmissionClient(address)
        self.address, self.working_dir, self.poll_s, self.timeout_s, self.log = (
            address, working_dir, poll_s, timeout_s, log)
        self.submitted: list[str] = []

    def runtime_env(self) -> dict:
        env: dict = {"env_vars": {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}}
        if self.working_dir:
            env.update(working_dir=self.working_dir, excludes=list(WORKING_DIR_EXCLUDES))
        return env

    def __call__(self, p: PlannedStage) -> int:
        from ray.job_submission import JobStatus

        job_id = f"genprop-{p.stage.name}-{p.hash[:8]}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.client.submit_job(entrypoint=shlex.join(p.command), submission_id=job_id,
                               runtime_env=self.runtime_env(),
                               metadata={"genprop_stage": p.stage.name, "genprop_hash": p.hash})
        self.submitted.append(job_id)
        self.log(f"  [{p.stage.name}] submitted Ray job {job_id} to {self.address}")
        shown, deadline = 0, time.monotonic() + self.timeout_s
        while True:
            status = self.client.get_job_status(job_id)
            done = status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
            shown = self._stream(p.stage.name, job_id, shown, final=done)
            if done:
                break
            if time.monotonic() > deadline:
                self.log(f"  [{p.stage.name}] still running after {self.timeout_s:.0f} s: stopping {job_id}")
                with contextlib.suppress(Exception):
                    self.client.stop_job(job_id)
                return 1
            time.sleep(self.poll_s)
        if status == JobStatus.SUCCEEDED:
            return 0
        info = self.client.get_job_info(job_id)
        self.log(f"  [{p.stage.name}] Ray job {job_id} {status.value}: {info.message}")
        return 1

    def _stream(self, stage: str, job_id: str, shown: int, final: bool = False) -> int:
        """Print the job's log lines not printed yet; returns how many characters are printed so far."""
        try:
            logs = self.client.get_job_logs(job_id)
        except Exception:  # noqa: BLE001 - logs may not exist yet while the job's driver starts
            return shown
        new = logs[shown:]
        # Print whole lines only; a partial last line waits for the next poll.
        cut = len(new) if final else new.rfind("\n") + 1
        for line in new[:cut].splitlines():
            self.log(f"  [{stage}] {line}")
        return shown + cut
