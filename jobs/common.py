"""Helpers shared by job entrypoints: finding packaged configs, logging set-up."""

from __future__ import annotations

import argparse
import logging
import os
from importlib import resources

from genprop import storage
from genprop.dag.config import SECTIONS  # the sections of a deployment YAML: one per DAG stage, plus dag:


def resolve_config(path: str) -> str:
    """The config URL to read: ``path`` itself if it exists, else a config shipped in ``jobs/configs``.

    Jobs run from any directory (a Docker image, a KubeRay pod), so ``world-tiny.yaml`` or
    ``jobs/configs/world-tiny.yaml`` find the packaged file wherever the job starts.

    Args:
        path (str): a URL, a local path, or the name of a packaged config.
    """
    if "://" in path or os.path.exists(path):
        return path
    packaged = resources.files("jobs") / "configs" / os.path.basename(path)
    if packaged.is_file():
        return str(packaged)
    if storage.exists(path):
        return path
    raise FileNotFoundError(f"{path}: no such config file (nor a packaged jobs/configs/{os.path.basename(path)})")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")



def load_section(cls, url: str, section: str, overrides: dict | None = None):
    """Load stage ``section`` of a deployment YAML (``world:``, ``shards:``, ``train:``, ``propagate:``, ...) into dataclass ``cls``.

    A deployment file holds one section per stage, so one file describes a whole run; a flat file (the
    fields of ``cls`` at top level) still loads as that stage's config.

    Args:
        cls (type): the stage's config dataclass.
        url (str): the YAML file.
        section (str): the stage's section name.
        overrides (dict | None): values that win over the file (None values ignored).
    """
    from genprop import configs

    data = configs.read_yaml(url)
    where = url
    if isinstance(data, dict) and any(k in data for k in SECTIONS):
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise configs.ConfigError(f"{url}: unknown section(s) {unknown}; known sections: {list(SECTIONS)}")
        data, where = data.get(section) or {}, f"{url}:{section}"
    if overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return configs.from_dict(cls, data, where=where)


def has_section(url: str, section: str) -> bool:
    """True when the YAML at ``url`` is a deployment file with a ``section:`` section."""
    from genprop import configs

    data = configs.read_yaml(url)
    return isinstance(data, dict) and isinstance(data.get(section), dict)


def resumable_run_parser(prog: str, description: str, default_config: str) -> argparse.ArgumentParser:
    """The arguments of the resumable no-Ray runs (backbone pretraining, procedural GenProp): config, output,
    state dir, step/minute limits, the machine label, device and CPU threads."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default=default_config)
    p.add_argument("--variant", default=None, help="a named variant of the config file (its variants: section)")
    p.add_argument("--output", required=True, help="local directory (model/, curve.jsonl, progress.json)")
    p.add_argument("--state-dir", default=None, help="optimiser state (default: <output>/../.state-<name>)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--machine", default="cpu", help="label recorded with the wall time (cpu-2core, h200, ...)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is far faster on a CPU shared with other work)")
    return p


def resumable_run_dirs(args) -> tuple[str, str]:
    """``(output, state_dir)`` absolute, after applying ``--threads``."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = os.path.abspath(args.output)
    return out, args.state_dir or os.path.join(os.path.dirname(out), f".state-{os.path.basename(out)}")


def run_resumable_job(argv: list[str] | None, prog: str, doc: str, default_config: str, config_cls, run,
                      summary: tuple[str, ...]) -> int:
    """The whole ``main`` of a resumable no-Ray run: parse, load the config (and variant), run, print a JSON line.

    Args:
        argv (list[str] | None): the arguments. prog (str), doc (str): the job's name and module docstring.
        default_config (str): the packaged config file by default.
        config_cls (type): the run's config dataclass.
        run (Callable): ``run(config, output, state_dir, max_steps=, max_minutes=, machine=, device=)`` -> progress.
        summary (tuple[str, ...]): the progress fields printed.
    """
    import json

    from genprop import configs

    args = resumable_run_parser(prog, doc.splitlines()[0], default_config).parse_args(argv)
    out, state = resumable_run_dirs(args)
    config = configs.load(config_cls, resolve_config(args.config), variant=args.variant)
    progress = run(config, out, state, max_steps=args.max_steps, max_minutes=args.max_minutes, machine=args.machine,
                   device=args.device)
    print(json.dumps({k: progress[k] for k in summary}))
    return 0

