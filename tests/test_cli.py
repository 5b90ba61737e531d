"""The commands as a user types them, from a directory that is not the checkout."""

import json
import os
import subprocess
import sys

import pytest

from jobs import cli

BIN = os.path.dirname(sys.executable)


def _run(args, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, **kw)


def test_world_then_inspect_json_reports_videos_and_objects(tmp_path):
    out = tmp_path / "world"
    r = _run([os.path.join(BIN, "genprop"), "world", "--out", str(out), "--videos", "4",
              "--frames", "16", "--size", "128x128"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run([os.path.join(BIN, "genprop"), "inspect", str(out), "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["format"] == "youtube-vos"
    assert report["bad"] == []
    assert len(report["videos"]) == 4
    meta = json.loads((out / "meta.json").read_text())
    for v in report["videos"]:
        assert v["frames"] == 16 and (v["height"], v["width"]) == (128, 128)
        assert v["objects"] and v["objects"] == sorted(int(k) for k in meta["videos"][v["id"]]["objects"])
        assert v["annotated_frames"] == 16


def test_inspect_unknown_layout_fails_with_reason(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("nothing here")
    r = _run([os.path.join(BIN, "genprop"), "inspect", str(tmp_path / "junk")], cwd=tmp_path)
    assert r.returncode == 2
    assert "junk" in r.stderr


def test_jobs_run_as_modules_from_any_directory(tmp_path):
    r = _run([sys.executable, "-m", "jobs.make_world", "--out", str(tmp_path / "w"), "--limit", "1",
              "--frames", "4"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["videos"] == 1
    assert (tmp_path / "w" / "meta.json").exists()


def test_size_argument_is_validated(tmp_path):
    r = _run([os.path.join(BIN, "genprop"), "world", "--out", str(tmp_path), "--size", "128"], cwd=tmp_path)
    assert r.returncode != 0 and "HxW" in r.stderr


@pytest.mark.parametrize("command, module", [("shards", "jobs.make_shards"), ("train", "jobs.train"),
                                             ("propagate-batch", "jobs.propagate"), ("evaluate", "jobs.evaluate"),
                                             ("dag", "jobs.dag")])
def test_stage_commands_forward_every_argument_to_their_job(monkeypatch, command, module):
    seen = {}
    monkeypatch.setattr(cli, "run_job", lambda mod, argv: seen.update(module=mod, argv=list(argv)) or 0)
    argv = ["--config", "tiny.yaml", "--output", "/x", "--limit", "2"]
    assert cli.main([command, *argv]) == 0
    assert seen == {"module": module, "argv": argv}
    cli.main([command, "--help"])
    assert seen["argv"] == ["--help"]
