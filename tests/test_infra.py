"""infra/: the Dockerfile, the KubeRay RayCluster and RayJob manifests and the cluster launcher YAML parse, have
the fields their tools require, and name entry modules and packaged configs that exist. (No docker engine or
Kubernetes here: these are the checks that catch a renamed module, a missing config or a typo'd field.)"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex

import pytest
import yaml

from genprop.dag import STAGES, load_deployment, plan_stages
from jobs.common import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFRA = os.path.join(REPO, "infra")


def load_all(name: str) -> list[dict]:
    with open(os.path.join(INFRA, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def check_entrypoint(entrypoint: str) -> tuple[str, list[str]]:
    """``python -m MODULE ARGS``: the module exists and ``--config`` names a packaged config."""
    argv = shlex.split(entrypoint)
    assert argv[:2] == ["python", "-m"], entrypoint
    module = argv[2]
    assert importlib.util.find_spec(module) is not None, module
    if "--config" in argv:
        cfg = argv[argv.index("--config") + 1]
        assert os.path.dirname(resolve_config(cfg)).endswith(os.path.join("jobs", "configs")), cfg
    return module, argv[3:]


def check_cluster_spec(spec: dict) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["rayVersion"])
    import ray

    assert spec["rayVersion"] == ray.__version__  # the image's Ray (pip install .) must match the operator's spec
    head = spec["headGroupSpec"]
    assert "rayStartParams" in head
    head_ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert {6379, 8265} <= head_ports
    groups = spec["workerGroupSpecs"]
    assert groups
    for g in groups:
        assert g["groupName"] and "rayStartParams" in g
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        container = g["template"]["spec"]["containers"][0]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        assert container["image"]


def test_raycluster_manifest():
    docs = load_all("kuberay/raycluster.yaml")
    assert len(docs) == 1
    rc = docs[0]
    assert rc["apiVersion"] == "ray.io/v1" and rc["kind"] == "RayCluster" and rc["metadata"]["name"] == "genprop"
    check_cluster_spec(rc["spec"])


def test_rayjobs_one_per_stage_match_the_dag():
    docs = load_all("kuberay/rayjobs.yaml")
    for d in docs:
        assert d["apiVersion"] == "ray.io/v1" and d["kind"] == "RayJob" and d["metadata"]["name"]
        assert d["spec"]["entrypoint"]
        # either on the standing cluster or on its own
        assert ("clusterSelector" in d["spec"]) != ("rayClusterSpec" in d["spec"])
        if "rayClusterSpec" in d["spec"]:
            check_cluster_spec(d["spec"]["rayClusterSpec"])
        else:
            assert d["spec"]["clusterSelector"] == {"ray.io/cluster": "genprop"}
    per_stage = [d for d in docs if "clusterSelector" in d["spec"]]
    assert [d["metadata"]["labels"]["genprop-stage"] for d in per_stage] == [s.name for s in STAGES]
    # the entrypoints are the DAG's own commands for svd.yaml (with the packaged config name)
    dep = load_deployment(resolve_config("svd.yaml"))
    copy = dep.dag.root + "/_dag/config.yaml"
    for d, p in zip(per_stage, plan_stages(dep)):
        module, args = check_entrypoint(d["spec"]["entrypoint"])
        assert module == p.stage.module
        assert args == ["svd.yaml" if a == copy else a for a in p.argv]
    whole = [d for d in docs if "rayClusterSpec" in d["spec"]]
    assert len(whole) == 1
    module, args = check_entrypoint(whole[0]["spec"]["entrypoint"])
    assert module == "jobs.dag" and args[0] == "run"


def test_cluster_launcher_yaml():
    (cfg,) = load_all("cluster-launcher/aws-gpu.yaml")
    for key in ("cluster_name", "provider", "auth", "available_node_types", "head_node_type", "max_workers",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in cfg, key
    assert cfg["provider"]["type"] == "aws" and cfg["provider"]["region"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    gpu = {n: t for n, t in types.items() if t.get("resources", {}).get("GPU", 0) >= 1}
    assert gpu, "no GPU node type"
    for t in gpu.values():
        assert t["node_config"]["InstanceType"].split(".")[0] in ("g5", "g6", "p4d", "p5")
        assert t["max_workers"] >= t.get("min_workers", 0)
    assert sum(t["max_workers"] for n, t in types.items() if n != cfg["head_node_type"]) <= cfg["max_workers"]
    assert cfg["docker"]["image"] and any("--head" in c for c in cfg["head_start_ray_commands"])


def test_dockerfile_installs_the_project():
    with open(os.path.join(INFRA, "Dockerfile")) as f:
        lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    # join continuation lines
    text = " ".join(lines).replace("\\ ", " ")
    froms = [l for l in lines if l.startswith("FROM ")]
    assert len(froms) == 1 and re.search(r"(nvidia/cuda:\d+\.\d+.*cudnn|rayproject/ray:.*gpu)", froms[0])
    copies = {l.split()[1] for l in lines if l.startswith("COPY ")}
    for src in ("pyproject.toml", "genprop", "pipelines", "jobs"):
        assert src in copies, src
        assert os.path.exists(os.path.join(REPO, src)), src
    assert re.search(r"RUN .*pip install \.( |$)", text)
    # the modules the manifests run are in the copied packages
    for s in STAGES:
        top = s.module.split(".")[0]
        assert top in copies and importlib.util.find_spec(s.module) is not None
    ignore = open(os.path.join(INFRA, "Dockerfile.dockerignore")).read().split()
    assert ".venv" in ignore and "models" in ignore


@pytest.mark.parametrize("path", ["kuberay/raycluster.yaml", "kuberay/rayjobs.yaml",
                                  "cluster-launcher/aws-gpu.yaml"])
def test_readme_names_every_manifest(path):
    with open(os.path.join(INFRA, "README.md")) as f:
        assert path in f.read()
