"""Helpers for the shard tests: a small procedural world with planted bad videos, object listings."""

from __future__ import annotations

import os
import shutil

from genprop import storage
from genprop.datasets.procedural import WorldConfig, write_world

# 5 videos of 9 frames at 32x32: v0, v1 good; v2 with a truncated JPEG mid-clip; v3 without annotations;
# v4 cut to 5 frames (shorter than T = 9).
BAD_VIDEOS = {"proc_s0_v0002": "corrupt", "proc_s0_v0003": "annotations", "proc_s0_v0004": "short"}


def write_world_with_bad_videos(local_dir: str, videos: int = 5, frames: int = 9) -> str:
    """Write the world to ``local_dir`` and plant the bad videos of :data:`BAD_VIDEOS`; returns ``local_dir``."""
    write_world(local_dir, WorldConfig(videos=videos, frames=frames, height=32, width=32, tasks=()))
    jpeg = os.path.join(local_dir, "JPEGImages")
    ann = os.path.join(local_dir, "Annotations")
    for vid, kind in BAD_VIDEOS.items():
        if not os.path.isdir(os.path.join(jpeg, vid)):
            continue
        if kind == "corrupt":
            path = os.path.join(jpeg, vid, "00004.jpg")
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data[: len(data) // 3])
        elif kind == "annotations":
            shutil.rmtree(os.path.join(ann, vid))
        elif kind == "short":
            for name in sorted(os.listdir(os.path.join(jpeg, vid)))[5:]:
                os.remove(os.path.join(jpeg, vid, name))
            for name in sorted(os.listdir(os.path.join(ann, vid)))[5:]:
                os.remove(os.path.join(ann, vid, name))
    for extra in ("cases", "Effects"):
        shutil.rmtree(os.path.join(local_dir, extra), ignore_errors=True)
    return local_dir


def list_objects(url: str) -> dict[str, tuple[int, str]]:
    """Every object under ``url`` (recursively): relative path -> (size, last-modified as text)."""
    fs, root = storage.filesystem(url)
    out = {}
    for path, info in fs.find(root, detail=True).items():
        modified = info.get("LastModified") or info.get("mtime") or info.get("created")
        out[path[len(root):].lstrip("/")] = (int(info["size"]), str(modified))
    return out


def read_all(url: str) -> dict[str, bytes]:
    """Relative path -> bytes of every object under ``url``."""
    fs, root = storage.filesystem(url)
    return {p[len(root):].lstrip("/"): fs.cat_file(p) for p in fs.find(root)}
