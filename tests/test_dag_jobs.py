"""The DAG as a user runs it against a cluster: `ray start --head` on 127.0.0.1, then `genprop dag run --address
http://127.0.0.1:<dashboard>` — every stage a Ray job. A stage failed on purpose stops the DAG naming it; the
rerun with the fixed config resumes there (earlier stages skipped); a
third run skips every stage and submits nothing."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from genprop.dag import read_state
from tests.dag_helpers import tiny_dag_sections, write_config
from tests.ray_cluster import BIN, local_head

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dag_run(config: str, address: str, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, "genprop"), "dag", "run", "--config", config, "--address", address,
                           *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_dag_through_ray_jobs_fails_resumes_and_skips(tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    root = str(tmp_path / "run")
    bad = write_config(tmp_path / "bad.yaml", tiny_dag_sections(root, propagate={"bogus_key": 1}))
    good = write_config(tmp_path / "good.yaml", tiny_dag_sections(root))
    with local_head(num_cpus=2) as (address, env):
        # 1. a bad value in the propagate section: world, shards and train run as jobs, propagate fails
        r = dag_run(bad, address, env)
        assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
        assert "dag: stage 'propagate' failed" in r.stdout, r.stdout[-3000:]
        assert "bogus_key" in r.stdout  # the job's own error, streamed from its log
        assert [read_state(root, n).state for n in ("world", "shards", "train")] == ["done"] * 3
        assert read_state(root, "propagate").state == "running" and read_state(root, "evaluate") is None
        assert os.path.isfile(os.path.join(root, "train", "model", "genprop_config.json"))
        # 2. fixed: resumes at propagate (a changed config: propagate and the stages after it run)
        r = dag_run(good, address, env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert r.stdout.count("skipped, done for config") == 3
        assert "[dag 4/6] propagate: done in" in r.stdout
        assert "| genprop |" in r.stdout and "report.html" in r.stdout  # the report stage's table, streamed
        for path in ("world/cases", "shards", "train/model", "predictions/_summary.json", "evaluate/metrics.json",
                     "evaluate/report.html", "report/summary.md"):
            assert os.path.exists(os.path.join(root, path)), path
        preds = json.load(open(os.path.join(root, "predictions", "_summary.json")))
        assert preds["rows"] == 2 and preds["done"] == 2, preds
        metrics = json.load(open(os.path.join(root, "evaluate", "metrics.json")))
        assert metrics["summary"]["genprop"]["psnr_gt"] is not None
        # 3. a rerun skips every stage and submits nothing
        client = JobSubmissionClient(address)
        before = len(client.list_jobs())
        r = dag_run(good, address, env)
        assert r.returncode == 0 and r.stdout.count("skipped, done for config") == 6, r.stdout[-3000:]
        jobs = client.list_jobs()
        assert len(jobs) == before == 7
        stages = sorted((j.metadata["genprop_stage"], j.status) for j in jobs)
        assert stages == sorted([(n, JobStatus.SUCCEEDED) for n in ("world", "shards", "train", "propagate",
                                                                    "evaluate", "report")]
                                + [("propagate", JobStatus.FAILED)])
        assert all(j.entrypoint.startswith("python -m jobs.") for j in jobs)
