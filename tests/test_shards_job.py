"""The shard job as a user runs it: `genprop shards`, and `ray job submit` to a local `ray start --head`."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from genprop import storage
from tests.ray_cluster import BIN, copy_project, local_head

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_job_refuses_a_missing_output(capsys):
    from jobs.make_shards import main

    assert main(["--config", "tiny.yaml"]) == 2
    assert "output URL is required" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_job_submit_against_a_local_head(tmp_path):
    from tests.shards_helpers import write_world_with_bad_videos

    world = write_world_with_bad_videos(str(tmp_path / "world"))
    out = str(tmp_path / "out")
    work = copy_project(REPO, tmp_path / "job")  # the working dir uploaded with the job: no .venv
    with local_head() as (address, env):
        submit = [os.path.join(BIN, "ray"), "job", "submit", "--address", address,
                  "--working-dir", work, "--", "python", "-m", "jobs.make_shards", "--config", "tiny.yaml",
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
