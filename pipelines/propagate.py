"""Ray Data batch propagation: a manifest's rows through actor pools that load the model once per actor.

Each row streams its video through ``Propagator.run_files``: ``<output>/<id>_mask.mp4`` (the edit
region), optionally ``<id>_raw.mp4`` / ``<id>_mpd.mp4`` (the model's frames without the composite,
and the MPD's mask: what evaluation scores besides the composite), ``<id>_track.mp4`` for colour
fill, and ``<id>.mp4`` last (each atomically), so a row whose ``<id>.mp4`` exists is complete and
is skipped on rerun. A bad row (unreadable video, missing frame, size mismatch, ...) comes back
with ``status="error"`` and a one-line reason (its traceback at debug level); the pool goes on.

Memory: a row's resident memory grows with its frame size and window (one window and its overlap
at the input's resolution, plus the writers), so rows declare it to Ray: they are grouped by
resolution class, and each class runs on its own actor pool whose ``memory`` is
:func:`row_memory_bytes` of the class's largest row. A 4K row is then never placed where only a
540p row fits. The formula's constants come from ``bench/bench_propagate.py`` (docs/benchmarks.md).
The driver logs rows done / total with an ETA and each row's outcome as it arrives.
"""

from __future__ import annotations

import logging
import time
import traceback

import ray

from genprop import storage
from genprop.propagation.config import PropagationConfig
from genprop.propagation.progress import format_duration
from genprop.tasks import Task

log = logging.getLogger(__name__)

# Resident bytes of a propagation actor: a fixed part (Python, torch, the model, the codecs) plus a part per
# input pixel of the window held (frames, working copies, composite and encoder buffers). bench/bench_propagate.py
# fits 530 MB + 20.4 B per window pixel on the shipped model at 360p/720p/1080p in a fresh process
# (docs/benchmarks.md). An actor that has run several rows holds more (the decoding and writing threads' malloc
# arenas, and the batch's mask video): 1.1 GB at 720p after three rows, levelling off; so the base is 1 GiB.
# A larger model adds its own weights (``model_bytes``).
ROW_MEMORY_BASE = 1024 * 2**20
ROW_MEMORY_PER_WINDOW_PIXEL = 25.0
# Resolution classes (pixels per frame): rows are grouped into the smallest class that holds them.
PIXEL_CLASSES = (640 * 360, 960 * 540, 1280 * 720, 1920 * 1080, 2560 * 1440, 3840 * 2160)


def row_memory_bytes(height: int, width: int, window: int, model_bytes: int = 0) -> int:
    """The memory to declare for a row of frames of ``height`` x ``width`` propagated in windows of ``window``.

    Args:
        height (int), width (int): the input's frame size. window (int): frames per window.
        model_bytes (int, default 0): the model's weights beyond the shipped one's (a real backbone).
    """
    return int(ROW_MEMORY_BASE + model_bytes + ROW_MEMORY_PER_WINDOW_PIXEL * height * width * (window + 2))


def pixel_class(height: int, width: int) -> int:
    """The smallest resolution class (pixels) that holds a frame of ``height`` x ``width`` (or its own size)."""
    pixels = height * width
    return next((c for c in PIXEL_CLASSES if pixels <= c), pixels)


def output_urls(output: str, row_id: str) -> dict[str, str]:
    """The files a row writes under ``output``: video, edit region, raw output, MPD mask, track mask."""
    return {"video": storage.join(output, f"{row_id}.mp4"), "mask": storage.join(output, f"{row_id}_mask.mp4"),
            "raw": storage.join(output, f"{row_id}_raw.mp4"), "mpd": storage.join(output, f"{row_id}_mpd.mp4"),
            "track": storage.join(output, f"{row_id}_track.mp4")}


def is_done(output: str, row_id: str) -> bool:
    """A row is complete when its video exists (written last)."""
    return storage.exists(output_urls(output, row_id)["video"])


def row_size(url: str) -> tuple[int, int] | None:
    """(H, W) of a row's video from its container header alone, read through fsspec (no local copy, no decode:
    the driver sizes every row of an archive); None when it cannot be read (the row will say why)."""
    import av

    from genprop.errors import DataError

    try:
        with storage.open_url(url) as f, av.open(f) as container:
            cc = container.streams.video[0].codec_context
            return (int(cc.height), int(cc.width)) if cc.height and cc.width else None
    except (DataError, OSError, IndexError, ValueError, av.FFmpegError):
        return None


class PropagateRows:
    """Callable for ``map_batches``: the model is loaded once in ``__init__`` (once per actor).

    Args:
        model_url (str | None): checkpoint directory; None = an untrained tiny Wan (smoke runs only).
        config (dict): ``PropagationConfig`` fields.
        output (str): the output URL.
        decode_timeout_s (float): the longest wait for one decoded frame.
        write_raw (bool, default False): also write ``<id>_raw.mp4`` and ``<id>_mpd.mp4`` (evaluation).
    """

    def __init__(self, model_url: str | None, config: dict, output: str, decode_timeout_s: float = 120.0,
                 write_raw: bool = False):
        from genprop.models import GenPropConfig, GenPropModel
        from genprop.propagation.propagate import Propagator, load_model

        if model_url:
            model = load_model(model_url)
        else:
            log.warning("no model given: an untrained tiny Wan (outputs are noise; for smoke runs)")
            model = GenPropModel(GenPropConfig.tiny("wan"))
        self.propagator = Propagator(model, PropagationConfig(**config))
        self.output, self.timeout, self.write_raw = output, decode_timeout_s, write_raw

    def _one(self, row: dict) -> dict:
        urls = output_urls(self.output, row["id"])
        start = time.perf_counter()
        stats = self.propagator.run_files(
            row["video"], row["edited_first_frame"], urls["video"], prompt=row["prompt"] or None,
            task=int(Task.from_cli(row["task"])), mask_out=urls["mask"], track_out=urls["track"],
            raw_out=urls["raw"] if self.write_raw else None, mpd_out=urls["mpd"] if self.write_raw else None,
            decode_timeout_s=self.timeout)
        return {"status": "done", "reason": "", "frames": int(stats["frames"]),
                "seconds": round(time.perf_counter() - start, 3), "drift_db": stats["drift"]["drift_db"],
                "peak_memory_bytes": stats["peak_memory"]["bytes"], "peak_memory_kind": stats["peak_memory"]["kind"],
                "size": f"{stats['width']}x{stats['height']}", "work_size": "x".join(map(str, stats["work_size"][::-1])),
                "region_source": stats["region_source"]}

    def __call__(self, batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        out = []
        for row in rows:
            try:
                res = self._one(row)
            except Exception as e:  # a bad row is recorded, never fatal for the job
                reason = str(e) if getattr(e, "reason", None) else f"{type(e).__name__}: {e}"
                reason = " ".join(reason.split())  # one line
                log.warning("row %s failed: %s", row["id"], reason)
                log.debug("row %s traceback:\n%s", row["id"], traceback.format_exc())
                res = {"status": "error", "reason": reason, "frames": 0, "seconds": 0.0, "drift_db": None,
                       "peak_memory_bytes": 0, "peak_memory_kind": "", "size": "", "work_size": "",
                       "region_source": ""}
            out.append({"id": row["id"], **res})
        return {k: [r[k] for r in out] for k in out[0]} if out else {}


def outcome_line(r: dict) -> str:
    """One row's outcome in one line."""
    if r["status"] != "done":
        return f"{r['id']}: {r['status']}: {r['reason']}"
    return (f"{r['id']}: done, {r['frames']} frames at {r['size']} in {r['seconds']:.1f} s, "
            f"peak {r['peak_memory_bytes'] / 2**20:.0f} MiB")


def propagate_rows(rows: list[dict], *, model_url: str | None, config: PropagationConfig, output: str,
                   actors: int = 1, num_cpus: float = 0.5, num_gpus: float = 1.0,
                   decode_timeout_s: float = 120.0, write_raw: bool = False, window: int = 0,
                   echo=print) -> list[dict]:
    """Run the rows on actor pools (one per resolution class); returns one status dict per row.

    Args:
        rows (list[dict]): manifest rows (checked, not yet done).
        model_url (str | None), config (PropagationConfig), output (str): as :class:`PropagateRows`.
        actors (int, default 1): actors per pool.
        num_cpus (float, default 0.5): CPUs per actor (fractional, so Ray Data keeps a CPU on small machines).
        num_gpus (float, default 1): GPUs per actor, used only where the cluster has GPUs.
        decode_timeout_s (float, default 120): the longest wait for one decoded frame.
        write_raw (bool, default False): see :class:`PropagateRows`.
        window (int, default 0): the window the rows run with (for their memory; 0 = ``config.window`` or 9).
        echo (callable, default print): where the progress lines go (rows done / total, ETA, each outcome).
    """
    import dataclasses

    if not rows:
        return []
    # actors may run in another directory: resolve relative local paths on the driver
    output = storage.absolute(output)
    model_url = storage.absolute(model_url) if model_url else model_url
    rows = [{**r, **{k: storage.absolute(r[k]) for k in ("video", "edited_first_frame") if r.get(k)}} for r in rows]
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    window = window or config.window or 9
    classes: dict[int, list[dict]] = {}
    for r in rows:  # an unreadable header goes with the smallest class: its row fails at once
        size = row_size(r["video"])
        classes.setdefault(pixel_class(*size) if size else PIXEL_CLASSES[0], []).append(r)
    datasets = []
    for pixels, members in sorted(classes.items()):
        side = int(pixels ** 0.5)
        memory = row_memory_bytes(side, side, window)
        ds = ray.data.from_items(members, override_num_blocks=len(members))
        datasets.append(ds.map_batches(
            PropagateRows, batch_size=1, concurrency=max(1, min(actors, len(members))), num_cpus=num_cpus,
            num_gpus=num_gpus if has_gpu else 0, memory=memory,
            fn_constructor_kwargs=dict(model_url=model_url, config=dataclasses.asdict(config), output=output,
                                       decode_timeout_s=decode_timeout_s, write_raw=write_raw)))
        echo(f"propagate: {len(members)} row(s) up to {pixels} pixels a frame, {memory / 2**30:.2f} GiB declared "
             "per actor")
    ds = datasets[0] if len(datasets) == 1 else datasets[0].union(*datasets[1:])
    results, start = [], time.perf_counter()
    for r in ds.iter_rows():
        results.append(dict(r))
        elapsed = time.perf_counter() - start
        eta = elapsed / len(results) * (len(rows) - len(results))
        echo(f"propagate: {len(results)}/{len(rows)} rows, elapsed {format_duration(elapsed)}, "
             f"ETA {format_duration(eta)}; {outcome_line(results[-1])}")
    return results
