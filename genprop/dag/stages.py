"""The DAG's stages, named once: world -> shards -> train -> propagate -> evaluate -> report.

Each stage is a job entrypoint (``python -m <module> ...``) that ``ray job submit`` can run, reads its own
section of the deployment YAML, and writes under ``<root>/<output>``. Inputs are the outputs of the stages
before it, so the whole flow is addressed by one root URL. The world stage always runs: its benchmark cases (with exact
ground truth) are what propagate and evaluate use; shards read it too unless ``shards.input`` names a
real dataset (YouTube-VOS, DAVIS, SA-V) — the "world or ingest" choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Layout:
    """Where a run's files are: the root, and the deployment YAML every job reads.

    Args:
        root (str): output root URL.
        config (str): URL of the deployment YAML the jobs read (the DAG's copy under ``<root>/_dag``).
        cases_limit (int | None): first N benchmark cases only (propagate, evaluate).
        dataset (str): the training dataset root (``shards.input``); "" = the DAG's procedural world.
        model (str): a trained checkpoint to propagate with (``dag.model``); "" = the train stage's.
    """

    root: str
    config: str
    cases_limit: int | None = None
    dataset: str = ""
    model: str = ""

    def out(self, stage: "Stage") -> str:
        return self.root.rstrip("/") + "/" + stage.output

    def limit(self) -> list[str]:
        return [] if self.cases_limit is None else ["--limit", str(self.cases_limit)]


@dataclass(frozen=True)
class Stage:
    """One stage of the DAG.

    Args:
        name (str): the stage's name (``--from``/``--until``, messages, state files).
        module (str): the job module (``python -m <module>``).
        output (str): its output directory under the root.
        sections (tuple[str, ...]): deployment sections it reads (their values enter its config hash).
        args (Callable[[Layout], list[str]]): the job's arguments for a layout.
    """

    name: str
    module: str
    output: str
    sections: tuple[str, ...]
    args: Callable[[Layout], list[str]]

    def argv(self, layout: Layout) -> list[str]:
        return self.args(layout)

    def command(self, layout: Layout) -> list[str]:
        """The full command line: ``python -m <module> <args>``."""
        return ["python", "-m", self.module, *self.argv(layout)]


def _out(name: str) -> Callable[[Layout], str]:
    return lambda lay: lay.root.rstrip("/") + "/" + name


_world, _shards, _train, _preds, _eval, _report = (_out(n) for n in
                                                   ("world", "shards", "train", "predictions", "evaluate", "report"))

STAGES: tuple[Stage, ...] = (
    Stage("world", "jobs.make_world", "world", ("world",),
          lambda lay: ["--config", lay.config, "--out", _world(lay)]),
    Stage("shards", "jobs.make_shards", "shards", ("shards",),
          lambda lay: ["--config", lay.config, "--input", lay.dataset or _world(lay), "--output", _shards(lay)]),
    Stage("train", "jobs.train", "train", ("train",),
          lambda lay: ["--config", lay.config, "--shards", _shards(lay), "--output", _train(lay)]),
    Stage("propagate", "jobs.propagate", "predictions", ("propagate",),
          lambda lay: ["--config", lay.config, "--cases", _world(lay), "--model", lay.model or _train(lay) + "/model",
                       "--output", _preds(lay), *lay.limit()]),
    Stage("evaluate", "jobs.evaluate", "evaluate", ("evaluate",),
          lambda lay: ["--config", lay.config, "--cases", _world(lay), "--predictions", _preds(lay),
                       "--out", _eval(lay), *lay.limit()]),
    Stage("report", "jobs.report", "report", (),
          lambda lay: ["--evaluation", _eval(lay), "--out", _report(lay)]),
)


def select(from_stage: str | None = None, until_stage: str | None = None) -> tuple[Stage, ...]:
    """The stages from ``from_stage`` to ``until_stage`` (both included; None = the first / the last).

    Raises:
        ValueError: an unknown stage name, or ``from`` after ``until``.
    """
    names = [s.name for s in STAGES]
    for n in (from_stage, until_stage):
        if n is not None and n not in names:
            raise ValueError(f"unknown stage {n!r}; stages: {' -> '.join(names)}")
    lo = names.index(from_stage) if from_stage else 0
    hi = names.index(until_stage) if until_stage else len(names) - 1
    if lo > hi:
        raise ValueError(f"--from {from_stage} comes after --until {until_stage}")
    return STAGES[lo:hi + 1]
