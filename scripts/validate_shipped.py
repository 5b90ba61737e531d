"""Score a shipped procedural GenProp on its run's validation cases with the current sampler: ``validation.json``.

    python scripts/validate_shipped.py [--to models/procedural-genprop] [--machine cpu-2core]

The run's learning curve (``curve.jsonl``) records what the validation scored while it trained; this records what
the shipped weights score now, on the same held-out cases with the same sampling settings (``run_config.json``),
so the shipped-weights test reproduces it exactly. Rerun it when the sampler changes what a seed draws.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VALIDATION_NAME = "validation.json"


def main() -> None:
    from genprop import configs, storage
    from genprop.models import load_genprop
    from genprop.training.procedural_genprop import GenPropRunConfig, score_run_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--to", default="models/procedural-genprop")
    p.add_argument("--machine", default="cpu-2core")
    args = p.parse_args()
    with open(os.path.join(args.to, "model", "run_config.json")) as f:
        run = json.load(f)
    config = configs.from_dict(GenPropRunConfig, run["config"], where="run_config.json")
    scores = score_run_model(load_genprop(os.path.join(args.to, "model")), config)
    record = {"step": run["step"], "scores": scores, "command": "python scripts/validate_shipped.py",
              "machine": args.machine, "date": datetime.date.today().isoformat()}
    storage.write_text(os.path.join(args.to, VALIDATION_NAME), json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: round(v, 4) for k, v in scores.items() if isinstance(v, float)}))


if __name__ == "__main__":
    main()
