"""Copy a procedural GenProp run's weights into the repository's named folder, ready for a fresh clone.

    python scripts/ship_genprop.py --run ~/runs/genprop --to models/procedural-genprop \
        [--backbone models/procedural-backbone/model]

Writes ``<to>/model`` (the run's exported EMA weights, ``genprop_config.json`` naming the backbone by a path
relative to the checkpoint, so it loads from any clone; ``run_config.json``), ``<to>/curve.jsonl`` and
``<to>/progress.json``. The backbone must be the one the run trained over (same file fingerprint). The folder is
replaced whole (never half written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ship(run: str, to: str, backbone: str) -> dict:
    """Copy ``run``'s model, curve and progress into ``to``; returns the shipped progress.

    Args:
        run (str): the run's output directory (``jobs.train_procedural_genprop --output``).
        to (str): the folder to (re)place, e.g. ``models/procedural-genprop``.
        backbone (str): the backbone directory the shipped config should name (relative to ``<to>/model``).

    Raises:
        ValueError: the run has no exported model, or it trained over another backbone.
    """
    from genprop.storage import directory_fingerprint
    from genprop.training.run_files import publish_dir, read_json

    model = os.path.join(run, "model")
    progress = read_json(os.path.join(run, "progress.json"), None)
    if progress is None or not os.path.isfile(os.path.join(model, "genprop_config.json")):
        raise ValueError(f"{run}: no exported model (model/genprop_config.json) or progress.json")
    want, got = progress.get("backbone_fingerprint"), directory_fingerprint(backbone)
    if want is not None and want != got:
        raise ValueError(f"{run} trained over backbone {want}, but {backbone} is {got}")

    def write(tmp: str) -> None:
        shutil.copytree(model, os.path.join(tmp, "model"))
        path = os.path.join(tmp, "model", "genprop_config.json")
        with open(path) as f:
            config = json.load(f)
        rel = os.path.relpath(os.path.abspath(backbone), os.path.abspath(os.path.join(to, "model")))
        config["backbone_config"]["pretrained"] = rel if rel.startswith("..") else "./" + rel
        with open(path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        for name in ("curve.jsonl", "progress.json"):
            shutil.copy2(os.path.join(run, name), os.path.join(tmp, name))

    publish_dir(to, write)
    return progress


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--backbone", default="models/procedural-backbone/model")
    args = p.parse_args()
    progress = ship(args.run, args.to, args.backbone)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.to) for f in fs)
    print(f"shipped step {progress.get('step')} of {args.run} to {args.to} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
