"""The plan of a run: every stage with its command and config hash.

A stage's hash covers its own sections of the deployment YAML, its command line (the paths and limits it
is given) and the hash of the stage before it, so a change anywhere reruns that stage and every stage
after it, and nothing before it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from genprop import storage
from genprop.dag.config import Deployment
from genprop.dag.stages import STAGES, Layout, Stage

# The DAG's copy of the deployment YAML: jobs on a cluster read it from the root (object storage), not
# from the submitting machine's disk.
CONFIG_NAME = "_dag/config.yaml"


@dataclass(frozen=True)
class PlannedStage:
    """A stage as this run will execute it.

    Args:
        stage (Stage): the stage.
        argv (list[str]): its job's arguments.
        output (str): its output URL.
        hash (str): its config hash (hex).
    """

    stage: Stage
    argv: list[str]
    output: str
    hash: str

    @property
    def command(self) -> list[str]:
        return ["python", "-m", self.stage.module, *self.argv]


def layout(deployment: Deployment) -> Layout:
    """Where the run's files go (``dag.root`` must be set)."""
    root = storage.absolute(deployment.dag.root)
    if not root:
        raise ValueError(f"{deployment.url}: no output root; set dag.root in the config or pass --root/--out")
    dataset = str((deployment.sections.get("shards") or {}).get("input") or "")
    model = deployment.dag.model
    if model and "://" not in model and not os.path.isabs(model):
        model = os.path.normpath(os.path.join(os.path.dirname(storage.absolute(deployment.url)), model))
    return Layout(root=root, config=storage.join(root, CONFIG_NAME), cases_limit=deployment.dag.cases_limit,
                  dataset=dataset, model=model)


# Stages a given checkpoint (dag.model) replaces.
TRAINING_STAGES = ("shards", "train")


def _model_fingerprint(url: str) -> str:
    """A digest of a local checkpoint directory's files (so new weights at the same path rerun propagate); the URL
    itself for remote ones."""
    if "://" in url and not url.startswith("file://"):
        return url
    return storage.directory_fingerprint(url[len("file://"):] if url.startswith("file://") else url)


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def plan_stages(deployment: Deployment) -> list[PlannedStage]:
    """Every stage of the DAG, in order, with its argv, output and config hash (without the shards and train stages
    when ``dag.model`` names a checkpoint, whose files then enter propagate's hash)."""
    lay = layout(deployment)
    planned, upstream = [], ""
    for stage in STAGES:
        if lay.model and stage.name in TRAINING_STAGES:
            continue
        argv = stage.argv(lay)
        payload = {"stage": stage.name, "module": stage.module, "argv": argv, "upstream": upstream,
                   "sections": {s: deployment.sections.get(s) for s in stage.sections}}
        if lay.model and stage.name == "propagate":
            payload["model"] = _model_fingerprint(lay.model)
        digest = _digest(payload)
        planned.append(PlannedStage(stage=stage, argv=argv, output=lay.out(stage), hash=digest))
        upstream = digest
    return planned
