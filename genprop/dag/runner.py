"""Run the DAG's stages in order through an executor, skipping those already done for the same config.

The executor runs one stage's job and returns its exit status: in this process on a local Ray runtime, or
as a Ray job on a cluster (``pipelines/dag.py``). Everything else — which stages to run, skipping,
clearing stale outputs, state files, stopping at the first failure — is here, without Ray.
"""

from __future__ import annotations

import shlex
import time
import traceback
from typing import Callable

from genprop import storage
from genprop.dag.config import Deployment
from genprop.dag.markers import StageState, clear_output, read_state, write_state
from genprop.dag.plan import PlannedStage, layout, plan_stages
from genprop.dag.stages import select

Executor = Callable[[PlannedStage], int]


def write_config_copy(deployment: Deployment) -> str:
    """Write the deployment (with its root) to ``<root>/_dag/config.yaml``, which every job reads; returns its URL."""
    import yaml

    url = layout(deployment).config
    storage.write_text(url, yaml.safe_dump(deployment.sections, sort_keys=False))
    return url


def run_dag(deployment: Deployment, execute: Executor, *, from_stage: str | None = None,
            until_stage: str | None = None, log: Callable[[str], None] = print) -> int:
    """Run the selected stages; returns 0 when all are done, 1 at the first stage that fails.

    Args:
        deployment (Deployment): the deployment YAML (with ``dag.root`` set).
        execute (Executor): runs one planned stage, returns its exit status.
        from_stage (str | None): first stage to consider (None = the first); earlier ones are assumed done.
        until_stage (str | None): last stage to consider (None = the last).
        log (Callable[[str], None]): where progress lines go.
    """
    plan = plan_stages(deployment)
    wanted = {s.name for s in select(from_stage, until_stage)}
    root = deployment.dag.root
    write_config_copy(deployment)
    n, t_run = len(plan), time.monotonic()
    for i, p in enumerate(plan, 1):
        name, tag = p.stage.name, f"[dag {i}/{n}] {p.stage.name}"
        if name not in wanted:
            continue
        state = read_state(root, name)
        if state is not None and state.state == "done" and state.hash == p.hash:
            log(f"{tag}: skipped, done for config {p.hash[:12]} ({p.output})")
            continue
        if state is not None and state.hash != p.hash and clear_output(p.output):
            log(f"{tag}: config changed since the last run; removed {p.output}")
        write_state(root, name, StageState(hash=p.hash, state="running"))
        log(f"{tag}: running {shlex.join(p.command)}")
        t0 = time.monotonic()
        try:
            rc = execute(p)
        except Exception:  # noqa: BLE001 - any error in a stage stops the DAG with the stage's name
            log(traceback.format_exc().rstrip())
            rc = 1
        seconds = round(time.monotonic() - t0, 1)
        if rc != 0:
            log(f"dag: stage '{name}' failed (exit status {rc}) after {seconds} s; fix it and rerun: "
                f"finished stages are skipped and the DAG resumes at '{name}'")
            return 1
        write_state(root, name, StageState(hash=p.hash, state="done", seconds=seconds))
        log(f"{tag}: done in {seconds} s -> {p.output}")
    log(f"dag: finished in {time.monotonic() - t_run:.1f} s under {root}")
    return 0
