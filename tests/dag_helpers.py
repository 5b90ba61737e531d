"""Deployment YAMLs for DAG tests: the packaged tiny.yaml shrunk to seconds (2 videos, 2 train steps, ...)."""

from __future__ import annotations

import copy

import yaml

from jobs.common import resolve_config


def tiny_dag_sections(root: str, **changes) -> dict:
    """tiny.yaml's sections, shrunk for tests, with ``dag.root = root``; ``changes`` replace whole sections.

    Args:
        root (str): output root.
        changes (dict): section name -> dict merged over that section (one level deep).
    """
    with open(resolve_config("tiny.yaml")) as f:
        data = yaml.safe_load(f)
    data = copy.deepcopy(data)
    data["dag"].update(root=root, cases_limit=2, poll_s=0.5, local_num_cpus=2)
    data["world"].update(videos=2)
    data["shards"]["world"].update(videos=2)
    data["train"].update(num_workers=1, cpus_per_worker=0.5, checkpoint_every=2, validate_every=0,
                         train={**data["train"]["train"], "max_steps": 2, "warmup_steps": 1})
    data["propagate"]["propagation"].update(num_steps=1)
    for name, values in changes.items():
        data[name] = {**(data.get(name) or {}), **values}
    return data


def write_config(path, sections: dict) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(sections, f, sort_keys=False)
    return str(path)
