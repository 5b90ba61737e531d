"""`genprop demo --out DIR` (what `make demo` runs): the whole DAG on the embedded default, locally, ending with the
metric table and the report's path; a second run skips every stage."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.ray_cluster import BIN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_demo_runs_the_whole_dag_and_prints_the_table(tmp_path):
    out = str(tmp_path / "demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # a local runtime, never a cluster
    r = subprocess.run([os.path.join(BIN, "genprop"), "demo", "--out", out], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=1100)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for i, stage in enumerate(["world", "shards", "train", "propagate", "evaluate", "report"], 1):
        assert f"[dag {i}/6] {stage}: done in" in r.stdout
    report = os.path.join(out, "evaluate", "report.html")
    assert os.path.isfile(report) and os.path.isfile(os.path.join(out, "evaluate", "metrics.json"))
    tail = r.stdout[r.stdout.index("dag: finished"):]
    assert "| method | psnr_m | psnr_gt |" in tail and "| genprop |" in tail and "| flow_warp |" in tail
    assert tail.rstrip().endswith(f"Report: {report}")
    metrics = json.load(open(os.path.join(out, "evaluate", "metrics.json")))
    assert len({c["id"] for c in metrics["cases"]}) == 20  # every benchmark case of the 4-video world
    again = subprocess.run([os.path.join(BIN, "genprop"), "demo", "--out", out], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped, done for config") == 6, again.stdout[-2000:]
    assert f"Report: {report}" in again.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_pretrained_propagates_with_the_shipped_weights(tmp_path):
    """`make demo`'s default: the shipped GenProp on held-out procedural cases, no shards and no training; it
    beats the unedited original on removal (the removal floor, on the demo's own cases)."""
    out = str(tmp_path / "demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    r = subprocess.run([os.path.join(BIN, "genprop"), "demo", "--pretrained", "--out", out], cwd=str(tmp_path),
                       env=env, capture_output=True, text=True, timeout=800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for i, stage in enumerate(["world", "propagate", "evaluate", "report"], 1):
        assert f"[dag {i}/4] {stage}: done in" in r.stdout
    assert "models/procedural-genprop/model" in r.stdout
    tail = r.stdout[r.stdout.index("dag: finished"):]
    assert "| genprop |" in tail and "| identity |" in tail
    metrics = json.load(open(os.path.join(out, "evaluate", "metrics.json")))
    assert len({c["id"] for c in metrics["cases"]}) == 20  # 4 videos x 5 tasks
