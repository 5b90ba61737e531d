"""Run the DAG (world -> shards -> train -> propagate -> evaluate -> report) locally or on a Ray cluster.

    python -m jobs.dag run --config tiny.yaml [--root URL] [--address http://HEAD:8265] [--from STAGE]
                           [--until STAGE] [--working-dir DIR|none]

Also ``genprop dag run ...``. Without ``--address`` every stage runs in this process on a local Ray runtime;
with one, every stage is submitted as a Ray job (the project as its working directory), its logs streamed,
and the DAG stops at the first stage that fails, naming it. Stages already done for the same config are
skipped, so a rerun resumes where the last one stopped.
Exit status: 0 done, 1 a stage failed, 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import sys

from genprop import storage
from genprop.configs import ConfigError
from genprop.dag import STAGES, load_deployment, run_dag
from jobs.common import resolve_config, setup_logging


def _log(line: str) -> None:
    print(line, flush=True)


def run(config: str, *, root: str | None = None, address: str | None = None, from_stage: str | None = None,
        until_stage: str | None = None, working_dir: str | None = "auto") -> int:
    """Run the DAG of deployment ``config``; returns the exit status.

    Args:
        config (str): deployment YAML (a path, URL or packaged config name).
        root (str | None): output root (overrides ``dag.root``).
        address (str | None): Ray dashboard address (``http://host:8265``) to submit to; None = local.
        from_stage (str | None), until_stage (str | None): the stages to consider.
        working_dir (str | None): the job's working dir when submitting ("auto" = this source tree, None = none).
    """
    try:
        deployment = load_deployment(resolve_config(config)).with_root(root)
    except (ConfigError, FileNotFoundError) as e:
        print(f"dag: {e}", file=sys.stderr)
        return 2
    if not deployment.dag.root:
        print(f"dag: {config}: no output root; set dag.root in the config or pass --root", file=sys.stderr)
        return 2
    if deployment.dag.model:
        from genprop.dag.plan import layout

        model = layout(deployment).model
        if not storage.exists(storage.join(model, "genprop_config.json")):
            print(f"dag: {config}: dag.model {model} is not a GenProp checkpoint (no genprop_config.json)",
                  file=sys.stderr)
            return 2
    if address:
        from pipelines.dag import RayJobsExecutor, project_root

        try:
            wd = project_root() if working_dir == "auto" else working_dir
        except FileNotFoundError as e:
            print(f"dag: {e}", file=sys.stderr)
            return 2
        execute = RayJobsExecutor(address, wd, poll_s=deployment.dag.poll_s, timeout_s=deployment.dag.job_timeout_s,
                                  log=_log)
    else:
        from pipelines.dag import LocalExecutor

        execute = LocalExecutor(num_cpus=deployment.dag.local_num_cpus)
    try:
        return run_dag(deployment, execute, from_stage=from_stage, until_stage=until_stage, log=_log)
    except ValueError as e:  # unknown stage names
        print(f"dag: {e}", file=sys.stderr)
        return 2


def demo(out: str, pretrained: bool = False) -> int:
    """The whole DAG on the embedded default (``tiny.yaml``) under ``out``; prints the metric table and report path.

    Args:
        out (str): output root URL.
        pretrained (bool, default False): propagate with the shipped GenProp (``pretrained.yaml``:
            models/procedural-genprop over models/procedural-backbone) on a world of fresh seeds, instead of
            training a tiny model from scratch (the shards and train stages are then left out).
    """
    rc = run("pretrained.yaml" if pretrained else "tiny.yaml", root=out)
    if rc != 0:
        return rc
    summary = storage.join(out, "report", "summary.md")
    print("\n" + storage.read_text(summary).split("\n\n", 2)[2].rstrip())  # the table and the report line
    return 0


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in STAGES]
    p = argparse.ArgumentParser(prog="python -m jobs.dag", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the DAG (skipping stages already done for the same config)")
    r.add_argument("--config", default="tiny.yaml", help="deployment YAML (dag:, world:, shards:, train:, ...)")
    r.add_argument("--root", default=None, help="output root URL (overrides dag.root)")
    r.add_argument("--address", default=None, help="Ray dashboard address (http://HOST:8265): submit each stage "
                                                   "as a Ray job; default: run locally")
    r.add_argument("--from", dest="from_stage", choices=names, default=None, help="first stage to run")
    r.add_argument("--until", dest="until_stage", choices=names, default=None, help="last stage to run")
    r.add_argument("--working-dir", default="auto",
                   help="the jobs' working dir when submitting: auto (this source tree), a directory, or none "
                        "(the cluster image has genprop installed)")
    r.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    wd = None if args.working_dir == "none" else args.working_dir
    return run(args.config, root=args.root, address=args.address, from_stage=args.from_stage,
               until_stage=args.until_stage, working_dir=wd)


if __name__ == "__main__":
    sys.exit(main())
