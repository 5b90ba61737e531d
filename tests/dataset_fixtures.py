"""Writers of tiny YouTube-VOS, DAVIS and SA-V datasets made of moving rectangles, for tests.

Each writer returns the ground truth per video (:class:`Truth`) so tests can compare what the
readers return with what was written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from genprop import masks as masklib


@dataclass
class Truth:
    """What a fixture wrote for one video.

    Attributes:
        frames (np.ndarray): ``(T, H, W, 3)`` uint8, as written (before JPEG/mp4 compression).
        masks (dict[int, np.ndarray]): object id (as the reader should report it) -> ``(T, H, W)``
            bool on every frame.
        annotated (tuple[int, ...]): frame positions that carry annotations.
        fps (Fraction): the frame rate the reader should report.
    """

    frames: np.ndarray
    masks: dict
    annotated: tuple
    fps: Fraction

    @property
    def object_ids(self) -> tuple:
        return tuple(sorted(self.masks))


def synthetic_clip(num_frames: int, height: int, width: int, num_objects: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames of rectangles moving over a smooth gradient, and their id maps (ids 1..K).

    Flat colours and a smooth background keep JPEG/H.264 error small, so tests can compare
    decoded pixels with a tolerance. Every object stays inside the frame on every frame.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([40 + 120 * xx / width, 40 + 120 * yy / height,
                     np.full((height, width), 90.0)], axis=-1)
    frames = np.repeat(base[None], num_frames, axis=0)
    ids = np.zeros((num_frames, height, width), dtype=np.uint8)
    for k in range(1, num_objects + 1):
        h, w = height // 3, width // 4
        y0, x0 = rng.integers(0, height - h), rng.integers(0, width - w - num_frames)
        colour = rng.integers(0, 256, size=3)
        for t in range(num_frames):
            y, x = y0, x0 + t  # one pixel right per frame
            frames[t, y:y + h, x:x + w] = colour
            ids[t, y:y + h, x:x + w] = k
    return np.clip(frames, 0, 255).astype(np.uint8), ids


def _truth_masks(ids: np.ndarray, num_objects: int, offset: int = 0) -> dict:
    return {k + offset: ids == k for k in range(1, num_objects + 1)}


def write_youtube_vos(root: str, videos: dict | None = None, *, size=(48, 64), meta: bool = True,
                      fps: str | None = None, frame_step: int = 5) -> dict[str, Truth]:
    """Write a YouTube-VOS split: ``JPEGImages/<vid>/%05d.jpg`` numbered every ``frame_step``.

    Args:
        root (str): local directory to write into.
        videos (dict | None): video id -> ``{"num_frames", "num_objects", "annotated"}`` (all
            optional; ``annotated`` are frame positions, default every frame).
        size (tuple[int, int]): ``(H, W)``.
        meta (bool): write ``meta.json``.
        fps (str | None): a per-video ``"fps"`` entry for ``meta.json`` (as the procedural world
            writes); None writes none (the reader then reports 6 fps).
        frame_step (int): original-frame-number step between consecutive JPEG names.
    """
    videos = videos or {"vid_a": {}, "vid_b": {"num_frames": 4, "num_objects": 1}}
    truths, meta_videos = {}, {}
    for n, (vid, spec) in enumerate(sorted(videos.items())):
        t, k = spec.get("num_frames", 6), spec.get("num_objects", 2)
        annotated = tuple(spec.get("annotated", range(t)))
        frames, ids = synthetic_clip(t, *size, k, seed=n)
        names = [f"{i * frame_step:05d}" for i in range(t)]
        for i in range(t):
            masklib.write_image(os.path.join(root, "JPEGImages", vid, names[i] + ".jpg"), frames[i])
        for i in annotated:
            masklib.write_id_map(os.path.join(root, "Annotations", vid, names[i] + ".png"), ids[i])
        entry = {"objects": {str(o): {"category": "box", "frames": names} for o in range(1, k + 1)}}
        if fps is not None:
            entry["fps"] = fps
        meta_videos[vid] = entry
        truths[vid] = Truth(frames, _truth_masks(ids, k), annotated,
                            Fraction(fps) if fps else Fraction(6))
    if meta:
        with open(os.path.join(root, "meta.json"), "w") as f:
            json.dump({"videos": meta_videos}, f)
    return truths


def write_davis(root: str, videos: dict | None = None, *, size=(48, 64), binary: bool = False,
                resolution: str = "480p", image_sets: bool = True) -> dict[str, Truth]:
    """Write a DAVIS 2017 root: ``JPEGImages/<res>/<seq>/%05d.jpg`` and annotations.

    Args:
        root (str): local directory to write into.
        videos (dict | None): sequence -> ``{"num_frames", "num_objects"}`` (optional).
        size (tuple[int, int]): ``(H, W)``, e.g. ``(240, 432)``.
        binary (bool): write grey 0/255 masks of object 1 only (instead of palette id maps).
        resolution (str): ``"480p"`` or ``"Full-Resolution"``.
        image_sets (bool): write ``ImageSets/2017/{train,val}.txt`` splitting the sequences.
    """
    videos = videos or {"bear": {}, "cows": {"num_frames": 3, "num_objects": 3}}
    truths = {}
    for n, (seq, spec) in enumerate(sorted(videos.items())):
        t = spec.get("num_frames", 5)
        k = 1 if binary else spec.get("num_objects", 2)
        frames, ids = synthetic_clip(t, *size, k, seed=10 + n)
        for i in range(t):
            masklib.write_image(os.path.join(root, "JPEGImages", resolution, seq, f"{i:05d}.jpg"),
                                frames[i])
            ann = os.path.join(root, "Annotations", resolution, seq, f"{i:05d}.png")
            if binary:
                masklib.write_binary_png(ann, ids[i] == 1)
            else:
                masklib.write_id_map(ann, ids[i])
        truths[seq] = Truth(frames, _truth_masks(ids, k), tuple(range(t)), Fraction(24))
    if image_sets:
        names = sorted(videos)
        os.makedirs(os.path.join(root, "ImageSets", "2017"), exist_ok=True)
        for split, part in (("train", names[::2]), ("val", names[1::2])):
            with open(os.path.join(root, "ImageSets", "2017", f"{split}.txt"), "w") as f:
                f.write("".join(p + "\n" for p in part))
    return truths


def write_mp4(path: str, frames: np.ndarray, fps: Fraction) -> None:
    """Encode frames to an mp4 with genprop.video."""
    from genprop import video

    video.encode(frames, path, fps)


def write_sav(root: str, videos: dict | None = None, *, size=(48, 64), subdir: str | None = None,
              manual: bool = True, auto: bool = False, fps: Fraction = Fraction(24)) -> dict[str, Truth]:
    """Write SA-V videos: ``sav_<id>.mp4`` plus ``sav_<id>_manual.json`` / ``_auto.json``.

    Masklets are annotated every 4th frame. The manual JSON's masklet ids are ``masklet_ids``
    (default ``0..K-1``), so the reader reports objects ``masklet_id + 1``; the auto JSON holds
    only the first masklet (so tests can tell which one was read).

    Args:
        root (str): local directory to write into.
        videos (dict | None): video id (``sav_...``) -> ``{"num_frames", "num_objects",
            "masklet_ids"}`` (optional).
        size (tuple[int, int]): ``(H, W)``, even (H.264 4:2:0).
        subdir (str | None): write into ``root/subdir`` instead of ``root``.
        manual (bool): write the manual JSON.
        auto (bool): write the auto JSON.
        fps (Fraction): the mp4's frame rate.
    """
    videos = videos or {"sav_000001": {}, "sav_000002": {"num_frames": 6, "num_objects": 1}}
    out_dir = os.path.join(root, subdir) if subdir else root
    os.makedirs(out_dir, exist_ok=True)
    truths = {}
    for n, (vid, spec) in enumerate(sorted(videos.items())):
        t, k = spec.get("num_frames", 9), spec.get("num_objects", 2)
        masklet_ids = list(spec.get("masklet_ids", range(k)))
        frames, ids = synthetic_clip(t, *size, k, seed=20 + n)
        write_mp4(os.path.join(out_dir, vid + ".mp4"), frames, fps)
        annotated = tuple(range(0, t, 4))

        def doc(columns):
            return {
                "video_id": vid, "video_frame_count": t, "video_height": size[0],
                "video_width": size[1], "video_duration": float(t / fps),
                "masklet_id": [masklet_ids[c] for c in columns], "masklet_num": len(columns),
                "masklet": [[masklib.rle_encode(ids[i] == c + 1) for c in columns]
                            for i in annotated],
                "masklet_first_appeared_frame": [0.0] * len(columns),
            }

        if manual:
            with open(os.path.join(out_dir, f"{vid}_manual.json"), "w") as f:
                json.dump(doc(range(k)), f)
        if auto:
            with open(os.path.join(out_dir, f"{vid}_auto.json"), "w") as f:
                json.dump(doc([0]), f)
        truths[vid] = Truth(frames, {masklet_ids[c] + 1: ids == c + 1 for c in range(k)},
                            annotated, Fraction(fps))
    return truths


def frames_as_png(root: str, frames_root: str, truths: dict) -> None:
    """Rewrite every frame JPEG under ``frames_root`` as a lossless PNG of the true frame (an exported tree)."""
    for seq, truth in truths.items():
        d = os.path.join(root, frames_root, seq)
        for k, name in enumerate(sorted(n for n in os.listdir(d) if n.endswith(".jpg"))):
            os.remove(os.path.join(d, name))
            masklib.write_image(os.path.join(d, name[:-4] + ".png"), truth.frames[k])
