"""Write a procedural world to a URL: the videos in the YouTube-VOS layout plus benchmark cases.

Layout under ``out``::

    world.json                              parameters + version (written last)
    meta.json                               {"videos": {vid: {"objects": {...}, "fps": "12"}}}
    JPEGImages/<vid>/00000.jpg ...          every frame, JPEG quality 95
    Annotations/<vid>/00000.png ...         palette PNGs of visible instance ids
    Effects/<vid>/<obj_id>/00000.png ...    binary PNGs (0/255): pixels the object's shadow or
                                            reflection changes
    cases/<case_id>/                        original.mp4, target.mp4, edited_first_frame.png,
                                            mask.mp4, ground_truth.npz, case.json (written last)
    .done/<vid>.json                        per-video completion marker (written after its cases)

Resumable: a video whose marker exists (and covers the requested tasks) is skipped without
rendering; a case whose ``case.json`` exists is not rewritten; anything else is (re)written.
Every file is written atomically, so an existing file is a complete one.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np

from genprop import masks, storage
from genprop.datasets.procedural.cases import Case, choose_object, make_case, make_case_id
from genprop.datasets.procedural.config import WorldConfig, make_scene
from genprop.datasets.procedural.render import RenderedVideo, render
from genprop.datasets.procedural.scene import Scene
from genprop.video import fps_string

log = logging.getLogger(__name__)

# 2: original.mp4 lossless (the benchmark scores propagation, not the codec: at 32x32 yuv420p's chroma blurred the
# small objects' colours that every method reads; the baselines read the exact frames).
WORLD_VERSION = 2
# Parameters that change what an existing video looks like; a resumed world must agree on them.
_CONTENT_KEYS = ("frames", "height", "width", "fps", "seed", "pan", "version")
CASE_FILES = {"original": "original.mp4", "target": "target.mp4",
              "edited_first_frame": "edited_first_frame.png", "mask": "mask.mp4",
              "ground_truth": "ground_truth.npz"}
MP4_CRF = 10


def frame_name(t: int) -> str:
    return f"{t:05d}"


def world_params(config: WorldConfig) -> dict:
    """The ``world.json`` content for ``config``."""
    return {"version": WORLD_VERSION, "videos": config.videos, "frames": config.frames,
            "height": config.height, "width": config.width, "fps": fps_string(config.fps),
            "seed": config.seed, "pan": config.pan, "tasks": list(config.tasks),
            "generator": "genprop.datasets.procedural"}


def _read_json(url: str) -> dict | None:
    try:
        return json.loads(storage.read_text(url))
    except FileNotFoundError:
        return None


def _check_resume(out_url: str, config: WorldConfig) -> None:
    old = _read_json(storage.join(out_url, "world.json"))
    if old is None:
        return
    new = world_params(config)
    diff = {k: (old.get(k), new[k]) for k in _CONTENT_KEYS if old.get(k) != new[k]}
    if diff:
        raise ValueError(f"{out_url}: holds a world made with other parameters "
                         f"({', '.join(f'{k}: {a!r} there, {b!r} asked' for k, (a, b) in diff.items())}); "
                         "write to another location")


def video_meta(scene: Scene, rendered: RenderedVideo) -> dict:
    """The video's ``meta.json`` entry: objects visible in at least one frame, and fps."""
    objects = {}
    for o in scene.objects:
        visible = (rendered.ids == o.id).reshape(scene.frames, -1).any(1)
        if visible.any():
            objects[str(o.id)] = {"category": o.shape,
                                  "frames": [frame_name(t) for t in np.flatnonzero(visible)]}
    return {"objects": objects, "fps": scene.fps}


def write_video(out_url: str, video_id: str, scene: Scene, rendered: RenderedVideo, meta: dict) -> None:
    """Frames, annotations and effect masks of one video."""
    for t in range(scene.frames):
        name = frame_name(t)
        masks.write_image(storage.join(out_url, "JPEGImages", video_id, name + ".jpg"),
                          rendered.frames[t], quality=95)
        masks.write_id_map(storage.join(out_url, "Annotations", video_id, name + ".png"), rendered.ids[t])
        for k in meta["objects"]:
            masks.write_binary_png(storage.join(out_url, "Effects", video_id, k, name + ".png"),
                                   rendered.effects[int(k)][t])


def _npz_bytes(case: Case) -> bytes:
    arrays = {"original": case.original, "target": case.target, "mask": case.mask.astype(bool)}
    if case.effect_mask is not None:
        arrays["effect_mask"] = case.effect_mask.astype(bool)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_case(case_dir: str, case: Case) -> dict:
    """Write one case's files, ``case.json`` last; returns the ``case.json`` content."""
    from genprop import video

    storage.write_bytes(storage.join(case_dir, CASE_FILES["ground_truth"]), _npz_bytes(case))
    video.encode(case.original, storage.join(case_dir, CASE_FILES["original"]), case.fps, lossless=True)
    video.encode(case.target, storage.join(case_dir, CASE_FILES["target"]), case.fps, crf=MP4_CRF)
    grey = np.repeat(np.where(case.mask, 255, 0).astype(np.uint8)[..., None], 3, axis=-1)
    video.encode(grey, storage.join(case_dir, CASE_FILES["mask"]), case.fps, crf=MP4_CRF)
    masks.write_image(storage.join(case_dir, CASE_FILES["edited_first_frame"]), case.target[0])
    info = {**case.describe(), "files": dict(CASE_FILES),
            "arrays": {"original": list(case.original.shape), "target": list(case.target.shape),
                       "mask": list(case.mask.shape),
                       **({"effect_mask": list(case.effect_mask.shape)} if case.effect_mask is not None else {})}}
    storage.write_text(storage.join(case_dir, "case.json"), json.dumps(info, indent=1) + "\n")
    return info


def write_world(out_url: str, config: WorldConfig | None = None) -> dict:
    """Write (or finish writing) the world ``config`` describes to ``out_url``.

    Args:
        out_url (str): destination root (plain path, ``file://`` or ``s3://``).
        config (WorldConfig | None): the world; defaults to ``WorldConfig()``.

    Returns:
        dict: ``{"url", "videos": [video ids], "cases": [case ids], "written": [video ids
        (re)written by this call], "skipped": [video ids already complete]}``.

    Raises:
        ValueError: ``out_url`` holds a world made with other content parameters.
    """
    config = config or WorldConfig()
    out_url = str(out_url).rstrip("/")
    storage.makedirs(out_url)
    _check_resume(out_url, config)
    # Written first as well, so a resumed half-written world is checked against its parameters.
    storage.write_text(storage.join(out_url, "world.json"), json.dumps(world_params(config), indent=1) + "\n")
    meta: dict[str, dict] = {}
    summary = {"url": out_url, "videos": [], "cases": [], "written": [], "skipped": []}
    for index in range(config.videos):
        video_id = config.video_id(index)
        marker_url = storage.join(out_url, ".done", video_id + ".json")
        marker = _read_json(marker_url)
        if marker is not None and set(config.tasks) <= set(marker.get("tasks", [])):
            meta[video_id] = marker["meta"]
            wanted = set(config.tasks)
            summary["cases"] += [c["case_id"] for c in marker["cases"] if c["task"] in wanted]
            summary["videos"].append(video_id)
            summary["skipped"].append(video_id)
            continue
        scene = make_scene(config.video_seed(index), config)
        rendered = render(scene)
        entry = video_meta(scene, rendered)
        write_video(out_url, video_id, scene, rendered, entry)
        done_tasks = set(marker.get("tasks", [])) if marker else set()
        cases = list(marker.get("cases", [])) if marker else []
        for task in config.tasks:
            object_id = choose_object(scene, task, rendered)
            case_id = make_case_id(video_id, task, object_id)
            case_dir = storage.join(out_url, "cases", case_id)
            if not storage.exists(storage.join(case_dir, "case.json")):
                write_case(case_dir, make_case(scene, video_id, task, original=rendered, object_id=object_id))
            if case_id not in {c["case_id"] for c in cases}:
                cases.append({"case_id": case_id, "task": task})
            done_tasks.add(task)
            summary["cases"].append(case_id)
        storage.write_text(marker_url, json.dumps(
            {"video_id": video_id, "seed": scene.seed, "meta": entry, "tasks": sorted(done_tasks),
             "cases": cases}, indent=1) + "\n")
        meta[video_id] = entry
        summary["videos"].append(video_id)
        summary["written"].append(video_id)
        log.info("procedural world: wrote %s (%d cases)", video_id, len(config.tasks))
    storage.write_text(storage.join(out_url, "meta.json"), json.dumps({"videos": meta}, indent=1) + "\n")
    storage.write_text(storage.join(out_url, "world.json"),
                       json.dumps({**world_params(config), "video_ids": summary["videos"]}, indent=1) + "\n")
    return summary


__all__ = ["CASE_FILES", "WORLD_VERSION", "frame_name", "video_meta", "world_params", "write_case",
           "write_video", "write_world"]
