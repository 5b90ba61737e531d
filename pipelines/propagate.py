"""Ray Data batch propagation: a manifest's rows through an actor pool that loads the model once per actor.

Each row writes ``<output>/<id>_mask.mp4`` and then ``<output>/<id>.mp4`` (each atomically), so a
row whose ``<id>.mp4`` exists is complete and is skipped on rerun. A bad row (unreadable video,
missing frame, size mismatch, ...) comes back with ``status="error"`` and its reason; the pool
goes on with the next row.
"""

from __future__ import annotations

import logging
import time
import traceback

import ray

from genprop import storage
from genprop.propagation.config import PropagationConfig, task_id

log = logging.getLogger(__name__)


def output_urls(output: str, row_id: str) -> dict[str, str]:
    """The files a row writes under ``output``: video, MPD mask and (colour fill) track mask."""
    return {"video": storage.join(output, f"{row_id}.mp4"), "mask": storage.join(output, f"{row_id}_mask.mp4"),
            "track": storage.join(output, f"{row_id}_track.mp4")}


def is_done(output: str, row_id: str) -> bool:
    """A row is complete when its video exists (written last)."""
    return storage.exists(output_urls(output, row_id)["video"])


class PropagateRows:
    """Callable for ``map_batches``: the model is loaded once in ``__init__`` (once per actor).

    Args:
        model_url (str | None): checkpoint directory; None = an untrained tiny Wan (smoke runs only).
        config (dict): ``PropagationConfig`` fields.
        output (str): the output URL.
        decode_timeout_s (float): per-video decode timeout.
    """

    def __init__(self, model_url: str | None, config: dict, output: str, decode_timeout_s: float = 120.0):
        from genprop.models import GenPropConfig, GenPropModel
        from genprop.propagation.propagate import Propagator, load_model

        if model_url:
            model = load_model(model_url)
        else:
            log.warning("no model given: an untrained tiny Wan (outputs are noise; for smoke runs)")
            model = GenPropModel(GenPropConfig.tiny("wan"))
        self.propagator = Propagator(model, PropagationConfig(**config))
        self.output, self.timeout = output, decode_timeout_s

    def _one(self, row: dict) -> dict:
        urls = output_urls(self.output, row["id"])
        start = time.perf_counter()
        result = self.propagator.run_files(row["video"], row["edited_first_frame"], row["prompt"] or None,
                                           task_id(row["task"]), decode_timeout_s=self.timeout)
        result.write(urls["video"], mask_out=urls["mask"], track_out=urls["track"],
                     lossless=self.propagator.config.lossless_output)
        return {"status": "done", "reason": "", "frames": int(result.frames.shape[0]),
                "seconds": round(time.perf_counter() - start, 3), "drift_db": result.drift["drift_db"],
                "peak_memory_bytes": result.peak_memory["bytes"]}

    def __call__(self, batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        out = []
        for row in rows:
            try:
                res = self._one(row)
            except Exception as e:  # a bad row is recorded, never fatal for the job
                reason = str(e) if getattr(e, "reason", None) else f"{type(e).__name__}: {e}"
                log.warning("row %s failed: %s\n%s", row["id"], reason, traceback.format_exc())
                res = {"status": "error", "reason": reason, "frames": 0, "seconds": 0.0, "drift_db": None,
                       "peak_memory_bytes": 0}
            out.append({"id": row["id"], **res})
        return {k: [r[k] for r in out] for k in out[0]} if out else {}


def propagate_rows(rows: list[dict], *, model_url: str | None, config: PropagationConfig, output: str,
                   actors: int = 1, num_cpus: float = 0.5, num_gpus: float = 1.0,
                   decode_timeout_s: float = 120.0) -> list[dict]:
    """Run the rows on an actor pool; returns one status dict per row (id, status, reason, frames, ...).

    Args:
        rows (list[dict]): manifest rows (checked, not yet done).
        model_url (str | None), config (PropagationConfig), output (str): as :class:`PropagateRows`.
        actors (int, default 1): pool size.
        num_cpus (float, default 0.5): CPUs per actor (fractional, so Ray Data keeps a CPU on small machines).
        num_gpus (float, default 1): GPUs per actor, used only where the cluster has GPUs.
        decode_timeout_s (float, default 120): per-video decode timeout.
    """
    import dataclasses

    if not rows:
        return []
    # actors may run in another directory: resolve relative local paths on the driver
    output = storage.absolute(output)
    model_url = storage.absolute(model_url) if model_url else model_url
    rows = [{**r, **{k: storage.absolute(r[k]) for k in ("video", "edited_first_frame") if r.get(k)}} for r in rows]
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(PropagateRows, batch_size=1, concurrency=max(1, min(actors, len(rows))),
                        num_cpus=num_cpus, num_gpus=num_gpus if has_gpu else 0,
                        fn_constructor_kwargs=dict(model_url=model_url, config=dataclasses.asdict(config),
                                                   output=output, decode_timeout_s=decode_timeout_s))
    return ds.take_all()
