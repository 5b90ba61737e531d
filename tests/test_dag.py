"""The DAG without Ray: stage list, config hashes, skip/resume/clear logic (a recording executor), the cases
manifest, the packaged deployment configs, and the report stage."""

from __future__ import annotations

import json
import os

import pytest

from genprop import configs, storage
from genprop.dag import STAGES, cases_manifest, load_deployment, plan_stages, read_state, run_dag, select
from genprop.report.table import metric_table
from genprop.tasks import Task
from jobs.common import load_section, resolve_config
from tests.dag_helpers import tiny_dag_sections, write_config

NAMES = ["world", "shards", "train", "propagate", "evaluate", "report"]


class Recorder:
    """An executor that records the stages it runs, writes a file into each output, and fails where told."""

    def __init__(self, fail: str | None = None):
        self.ran: list[str] = []
        self.fail = fail

    def __call__(self, p) -> int:
        self.ran.append(p.stage.name)
        if p.stage.name == self.fail:
            return 2
        storage.write_text(storage.join(p.output, "out.txt"), p.hash)
        return 0


def deployment(tmp_path, **changes):
    return load_deployment(write_config(tmp_path / "dag.yaml", tiny_dag_sections(str(tmp_path / "run"), **changes)))


def test_stages_are_named_once_in_order():
    assert [s.name for s in STAGES] == NAMES
    assert len({s.module for s in STAGES}) == len(STAGES)
    assert [s.name for s in select("train", "evaluate")] == ["train", "propagate", "evaluate"]
    assert [s.name for s in select(until_stage="world")] == ["world"]
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        select("nope")
    with pytest.raises(ValueError, match="comes after"):
        select("report", "world")


def test_every_stage_module_is_a_job_with_main():
    import importlib

    for s in STAGES:
        assert callable(importlib.import_module(s.module).main), s.module


def test_hash_change_reaches_the_stage_and_those_after_it(tmp_path):
    base = {p.stage.name: p.hash for p in plan_stages(deployment(tmp_path))}
    changed = {p.stage.name: p.hash for p in plan_stages(deployment(tmp_path, train={"batch_size": 2}))}
    assert [n for n in NAMES if base[n] != changed[n]] == ["train", "propagate", "evaluate", "report"]
    limited = {p.stage.name: p.hash for p in plan_stages(deployment(tmp_path, dag={"cases_limit": 3}))}
    assert [n for n in NAMES if base[n] != limited[n]] == ["propagate", "evaluate", "report"]
    assert base == {p.stage.name: p.hash for p in plan_stages(deployment(tmp_path))}  # deterministic


def test_a_given_model_replaces_shards_and_train_and_its_weights_enter_the_hash(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "genprop_trainable.safetensors").write_bytes(b"one")
    dep = deployment(tmp_path, dag={"model": "ckpt"})  # relative to the deployment YAML's directory
    plan = {p.stage.name: p for p in plan_stages(dep)}
    assert list(plan) == ["world", "propagate", "evaluate", "report"]
    argv = plan["propagate"].argv
    assert argv[argv.index("--model") + 1] == str(ckpt)
    first = Recorder()
    assert run_dag(dep, first) == 0 and first.ran == ["world", "propagate", "evaluate", "report"]
    (ckpt / "genprop_trainable.safetensors").write_bytes(b"two")  # new weights at the same path
    again = Recorder()
    assert run_dag(deployment(tmp_path, dag={"model": "ckpt"}), again) == 0
    assert again.ran == ["propagate", "evaluate", "report"]


def test_run_skip_fail_resume_and_clear(tmp_path, capsys):
    dep = deployment(tmp_path)
    root = dep.dag.root
    first = Recorder()
    assert run_dag(dep, first) == 0 and first.ran == NAMES
    assert all(read_state(root, n).state == "done" for n in NAMES)
    assert storage.exists(storage.join(root, "_dag", "config.yaml"))
    again = Recorder()
    assert run_dag(dep, again) == 0 and again.ran == []
    assert capsys.readouterr().out.count("skipped, done for config") == 6
    # a failure at propagate after a config change: stops there, names it, later stages untouched
    dep2 = deployment(tmp_path, propagate={"actors": 2})
    stale = storage.join(root, "predictions", "stale.mp4")
    storage.write_text(stale, "old")
    failing = Recorder(fail="propagate")
    assert run_dag(dep2, failing) == 1
    out = capsys.readouterr().out
    assert failing.ran == ["propagate"] and "stage 'propagate' failed (exit status 2)" in out
    assert "config changed" in out and not storage.exists(stale)  # another config's outputs are removed
    assert read_state(root, "propagate").state == "running" and read_state(root, "evaluate").state == "done"
    # the rerun resumes at the failed stage and reruns those after it
    resumed = Recorder()
    assert run_dag(dep2, resumed) == 0 and resumed.ran == ["propagate", "evaluate", "report"]


def test_from_and_until_select_stages(tmp_path):
    dep = deployment(tmp_path)
    rec = Recorder()
    assert run_dag(dep, rec, until_stage="shards") == 0 and rec.ran == ["world", "shards"]
    rec = Recorder()
    assert run_dag(dep, rec, from_stage="evaluate") == 0 and rec.ran == ["evaluate", "report"]
    rec = Recorder()
    assert run_dag(dep, rec, from_stage="train", until_stage="propagate") == 0 and rec.ran == ["train", "propagate"]
    assert read_state(dep.dag.root, "train").state == "done"


def test_a_crashing_stage_is_named(tmp_path, capsys):
    def boom(p):
        raise RuntimeError("kaput")

    assert run_dag(deployment(tmp_path), boom) == 1
    out = capsys.readouterr().out
    assert "stage 'world' failed" in out and "kaput" in out


def test_missing_root_and_unknown_section_are_refused(tmp_path):
    sections = tiny_dag_sections("")
    with pytest.raises(ValueError, match="no output root"):
        plan_stages(load_deployment(write_config(tmp_path / "a.yaml", sections)))
    with pytest.raises(configs.ConfigError, match="unknown section"):
        load_deployment(write_config(tmp_path / "b.yaml", {**sections, "deploy": {}}))
    with pytest.raises(configs.ConfigError, match="dag"):
        load_deployment(write_config(tmp_path / "c.yaml", {**sections, "dag": {"rooot": "x"}}))


@pytest.mark.parametrize("name", ["tiny.yaml", "svd.yaml", "wan.yaml"])
def test_packaged_deployments_load_in_every_stage(name):
    from genprop.datasets.procedural import WorldConfig
    from genprop.shards import ShardsConfig
    from genprop.training.job_config import TrainJobConfig
    from jobs.evaluate import EvaluateJobConfig
    from jobs.propagate import PropagateJobConfig

    url = resolve_config(name)
    dep = load_deployment(url)
    assert dep.dag.root
    for cls, section in ((WorldConfig, "world"), (ShardsConfig, "shards"), (TrainJobConfig, "train"),
                         (PropagateJobConfig, "propagate"), (EvaluateJobConfig, "evaluate")):
        load_section(cls, url, section)


def test_cases_manifest_maps_every_case(tmp_path):
    from genprop.datasets.procedural import WorldConfig, write_world
    from genprop.propagation.manifest import read_manifest, row_problem

    world = str(tmp_path / "world")
    write_world(world, WorldConfig(videos=1, frames=9, height=32, width=32, seed=0))
    rows = cases_manifest(world)
    ids = sorted(os.listdir(os.path.join(world, "cases")))
    assert [r["id"] for r in rows] == ids and len(rows) >= 4
    for r in rows:
        case = json.load(open(os.path.join(world, "cases", r["id"], "case.json")))
        assert r["task"] == Task.for_case(case["task"]).cli_name and r["prompt"] == case["prompt"]
        assert os.path.exists(r["video"]) and os.path.exists(r["edited_first_frame"])
    assert {Task.for_case(t).cli_name for t in ("remove", "insert", "track", "replace", "background")} == {
        "remove", "insert", "track", "edit"}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen: set[str] = set()
    assert all(row_problem(r, seen) is None for r in read_manifest(str(manifest)))  # the batch job accepts them
    assert [r["id"] for r in cases_manifest(world, limit=2)] == ids[:2]


def test_report_stage_writes_summary_and_prints_table(tmp_path, capsys):
    from jobs import report

    summary = {"genprop": {"psnr_m": 20.5, "iou": None}, "identity": {"psnr_m": 30.0, "iou": 0.25}}
    ev = tmp_path / "evaluate"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({"cases": [{"id": "a"}, {"id": "b"}], "summary": summary}))
    assert report.main(["--evaluation", str(ev), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "| genprop | 20.500 | n/a |" in metric_table(summary, ["psnr_m", "iou"])
    assert "| method | psnr_m |" in out and f"report: {ev}/report.html" in out
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "2 benchmark cases" in text and "report.html" in text
    assert report.main(["--evaluation", str(tmp_path / "none"), "--out", str(tmp_path / "r2")]) == 2


def test_dag_command_refuses_bad_arguments(tmp_path, capsys):
    from jobs.cli import main

    cfg = write_config(tmp_path / "dag.yaml", tiny_dag_sections(str(tmp_path / "run")))
    with pytest.raises(SystemExit):
        main(["dag", "run", "--config", cfg, "--from", "nope"])
    assert main(["dag", "run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["dag", "run", "--config", write_config(tmp_path / "x.yaml", {"bogus": {}})]) == 2
    assert "unknown section" in capsys.readouterr().err


def test_a_relative_root_is_resolved_on_the_driver(tmp_path, monkeypatch):
    # Ray Train workers run in their own directory: `make demo`'s default root `demo-out` must reach them whole.
    monkeypatch.chdir(tmp_path)
    dep = load_deployment(write_config(tmp_path / "dag.yaml", tiny_dag_sections("rel-root")))
    for p in plan_stages(dep):
        assert p.output.startswith(str(tmp_path / "rel-root")), p.output
        assert all(not a.startswith("rel-root") for a in p.argv), p.argv
