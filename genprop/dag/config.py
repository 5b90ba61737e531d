"""The ``dag:`` section of a deployment YAML, and the deployment file as the DAG sees it.

A deployment YAML holds one section per stage (``world:``, ``shards:``, ``train:``, ``propagate:``,
``evaluate:``) plus ``dag:``; each stage's job reads its own section, the DAG reads ``dag:`` and hashes
the others. The DAG never validates a stage's section itself: the stage's job does, so a bad value
fails that stage (and names it), not the whole plan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genprop import configs

# Every top-level key a deployment YAML may have.
SECTIONS = ("dag", "world", "shards", "train", "propagate", "evaluate")


@dataclass(frozen=True)
class DagConfig:
    """How the DAG runs.

    Args:
        root (str, default ""): output root URL; every stage writes under it (``<root>/world``, ...).
            Must be reachable from every node (object storage) when jobs run on a cluster.
        cases_limit (int | None, default None): propagate and evaluate only the first N benchmark cases.
        job_timeout_s (float, default 21600): a submitted stage still running after this is stopped and fails.
        poll_s (float, default 2.0): seconds between status/log polls of a submitted stage.
        local_num_cpus (int | None, default None): CPUs of the local Ray runtime (None = all).
        model (str, default ""): a trained GenProp checkpoint directory to propagate with; when set, the shards
            and train stages are left out of the plan. A relative local path is relative to the deployment
            YAML's directory (so a packaged config can name the shipped weights).
    """

    root: str = ""
    cases_limit: int | None = None
    job_timeout_s: float = 21600.0
    poll_s: float = 2.0
    local_num_cpus: int | None = None
    model: str = ""

    @classmethod
    def tiny(cls, root: str = "demo-out") -> "DagConfig":
        return cls(root=root, job_timeout_s=1800.0, poll_s=1.0)


@dataclass(frozen=True)
class Deployment:
    """A deployment YAML: its sections (plain data, for hashing and copying) and its ``dag:`` section.

    Args:
        url (str): where it was read from.
        sections (dict): every top-level section as read.
        dag (DagConfig): the ``dag:`` section.
    """

    url: str
    sections: dict
    dag: DagConfig

    def with_root(self, root: str | None) -> "Deployment":
        """This deployment writing under ``root`` (unchanged when None)."""
        if root is None:
            return self
        dag = dataclasses.replace(self.dag, root=root)
        return dataclasses.replace(self, dag=dag, sections={**self.sections, "dag": configs.to_dict(dag)})


def load_deployment(url: str) -> Deployment:
    """Read a deployment YAML; unknown top-level sections and unknown ``dag:`` keys are errors.

    Args:
        url (str): the YAML file (any URL).

    Raises:
        configs.ConfigError: unreadable file, unknown section or bad ``dag:`` value.
    """
    data = configs.read_yaml(url)
    if not isinstance(data, dict):
        raise configs.ConfigError(f"{url}: expected a mapping of sections {list(SECTIONS)}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise configs.ConfigError(f"{url}: unknown section(s) {unknown}; known sections: {list(SECTIONS)}")
    dag = configs.from_dict(DagConfig, data.get("dag") or {}, where=f"{url}:dag")
    return Deployment(url=url, sections=data, dag=dag)
