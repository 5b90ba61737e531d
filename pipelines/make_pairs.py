"""Stage 2 of make_shards: decode each planned clip, crop it, make its routed synthetic pair (Ray tasks)."""

from __future__ import annotations

import json
import pickle
import traceback

from genprop.datasets import open_dataset
from genprop.errors import DataError
from genprop.shards import ShardsConfig
from genprop.shards.clip import make_planned_pair
from genprop.synth.sampler import SkipSample


def make_pairs(batch: dict, url: str, config: ShardsConfig, inpainter=None) -> dict:
    """``map_batches`` function: planned-sample rows (``plan`` JSON) -> rows with a pickled pair or a reason.

    Bad input (``DataError``, objects below the minimum area) gives status "skipped"; any other exception
    "failed", with its type, message and last frame, so one bad sample never stops a multi-day job. A donor that
    cannot be read is replaced (``make_planned_pair``); ``donor_skips`` (JSON) lists it, for the manifest's
    ``donor`` rows.

    Args:
        batch (dict): ``{"plan": [JSON of PlannedSample]}``.
        url (str): the dataset root.
        config (ShardsConfig): the job config.
        inpainter: mask-and-fill's inpainter (picklable; None = OpenCV).
    """
    dataset = open_dataset(url, config.format)
    out = {"plan": [], "status": [], "reason": [], "pair": [], "donor_skips": []}
    for plan in batch["plan"]:
        row = json.loads(plan)
        status, reason, pair, donors = "ok", "", b"", {"used": row["donor_id"], "skipped": []}
        try:
            pair = pickle.dumps(make_planned_pair(row, dataset, config, inpainter, donors=donors), protocol=5)
            if donors["used"] != row["donor_id"]:  # a donor was replaced: the sample records the one it used
                plan = json.dumps({**row, "donor_id": donors["used"]})
        except (DataError, SkipSample) as e:
            status, reason = "skipped", str(e)
        except Exception as e:  # noqa: BLE001 - recorded in the manifest, the job goes on
            status = "failed"
            reason = f"{type(e).__name__}: {e} ({traceback.format_exc(limit=-1).strip().splitlines()[-3]})"
        out["plan"].append(plan)
        out["status"].append(status)
        out["reason"].append(reason)  # whole: the summary lists it as it is
        out["pair"].append(pair)
        out["donor_skips"].append(json.dumps(donors["skipped"]))  # recorded for the donors alone
    return out
