"""The sample plan: which clips of which videos, which augmentation, which shard, decided from sorted inputs.

Everything here runs on the driver (or per video, cheaply) and depends only on the sorted video list, the
videos' metadata and the seed: Ray decides where and when samples are computed, never which sample lands
in which shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from genprop import video as videolib
from genprop.datasets.verify import verify_record
from genprop.errors import DataError
from genprop.shards.config import ShardsConfig
from genprop.synth import sample_spec
from genprop.tasks import Task


def _stable_int(*parts) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()[:8], "big")


def clip_indices(num_frames: int, fps, config: ShardsConfig, start: int, stride: int = 1) -> list[int]:
    """Source frame indices of the clip starting at ``start`` (may be shorter than T at the end).

    Without ``config.fps`` the clip takes every ``stride``-th frame (the annotation rate, see
    :func:`annotation_stride`); with it, frames resampled to that rate.
    """
    if config.fps is None:
        return list(range(start, num_frames, stride))[: config.frames]
    return videolib.sample_indices(num_frames, fps, target_fps=config.fps, start=start, max_frames=config.frames)


def annotation_stride(annotated_frames) -> int:
    """Frames between a video's annotations when they are evenly spaced (SA-V: 4, YouTube-VOS train: 5), else 1.

    Args:
        annotated_frames (Sequence[int]): the annotated frame indices, sorted.
    """
    steps = {b - a for a, b in zip(annotated_frames, annotated_frames[1:])}
    return steps.pop() if len(steps) == 1 else 1


def describe_video(dataset, video_id: str, config: ShardsConfig) -> dict:
    """One listing row: the video's metadata and the start frames whose clips are fully annotated.

    Args:
        dataset: an opened dataset (``genprop.datasets.open_dataset``).
        video_id (str): one of ``dataset.videos()``.
        config (ShardsConfig): clip length and rate, and whether to verify the video whole (``verify``).

    Returns:
        dict: ``source, video_id, status ("ok" | "skipped"), reason, num_frames, height, width, fps,
        object_ids, starts, stride`` (frames between a clip's frames: the annotation rate when the config names
        no fps) and ``clip_fps`` (the clips' frame rate, recorded on every sample).
    """
    row = {"source": dataset.format, "video_id": video_id, "status": "ok", "reason": "", "num_frames": 0,
           "height": 0, "width": 0, "fps": "", "object_ids": [], "starts": [], "stride": 1, "clip_fps": ""}
    try:
        rec = dataset.record(video_id)
    except DataError as e:
        return {**row, "status": "skipped", "reason": f"{e.url}: {e.reason}"}
    row.update(num_frames=rec.num_frames, height=rec.height, width=rec.width, fps=videolib.fps_string(rec.fps),
               object_ids=list(rec.object_ids))
    if not rec.object_ids:
        return {**row, "status": "skipped", "reason": "no annotated objects"}
    if config.verify:
        problems = verify_record(rec, config.decode_timeout_s)
        if problems:
            return {**row, "status": "skipped", "reason": "; ".join(problems)}
    if rec.num_frames < config.frames:
        return {**row, "status": "skipped", "reason": f"shorter than T: {rec.num_frames} < {config.frames} frames"}
    annotated = set(rec.annotated_frames)
    # clips at the annotation rate unless the config names a rate (sparse annotations: SA-V every 4th frame)
    rate = annotation_stride(rec.annotated_frames)
    stride = rate if config.fps is None else 1
    starts = []
    for s in range(rec.num_frames):
        idx = clip_indices(rec.num_frames, rec.fps, config, s, stride)
        if len(idx) < config.frames:
            break
        if annotated.issuperset(idx):
            starts.append(s)
    if not starts:
        every = f"every {rate}th frame ({videolib.fps_string(rec.fps / rate)} fps)" if rate > 1 else "every frame"
        if len(rec.annotated_frames) == 1:
            every = "the first frame only (a validation split?)"
        hint = (f"; set fps to {videolib.fps_string(rec.fps / rate)} or leave it unset to make clips at the "
                "annotation rate" if config.fps is not None and rate > 1 else "")
        at = config.fps or videolib.fps_string(rec.fps / stride)
        return {**row, "status": "skipped",
                "reason": f"no clip of {config.frames} frames (at fps {at}) is fully annotated: "
                          f"{len(rec.annotated_frames)} of {rec.num_frames} frames are annotated, {every}{hint}"}
    return {**row, "starts": starts, "stride": stride, "clip_fps": videolib.fps_string(rec.fps / stride)}


@dataclass(frozen=True)
class PlannedSample:
    """One sample of the plan (plain data: travels through Ray Data as a row).

    Attributes:
        shard (int), position (int): the shard and the place in it.
        source (str), video_id (str), start (int), indices (list[int]): the clip.
        fps (str): the clip's frame rate.
        task (str), seed (int), colour (list[int]), prompt (str): the pair spec (``task``: the augmentation's
            name, ``Task.augmentation``).
        donor_id (str): copy-and-paste donor video ("" = the video itself); donor_indices (list[int]).
        donor_fallbacks (list): ``[video_id, indices]`` of the donors tried in turn when the donor cannot be read
            (the next videos in id order, drawn without randomness, so a rerun makes the same choice).
    """

    shard: int
    position: int
    source: str
    video_id: str
    start: int
    indices: list
    fps: str
    task: str
    seed: int
    colour: list
    prompt: str
    donor_id: str
    donor_indices: list
    donor_fallbacks: list = field(default_factory=list)

    def to_row(self) -> dict:
        return asdict(self)


# Donors tried after the drawn one when it cannot be read (then the video itself is its own donor).
DONOR_CANDIDATES = 3


def plan_samples(videos: list[dict], config: ShardsConfig, samples_per_shard: int) -> list[PlannedSample]:
    """Plan every sample of the job from the listing rows (any order: they are sorted here).

    Args:
        videos (list[dict]): rows from :func:`describe_video`.
        config (ShardsConfig): seed, clips per video, augmentation ratios.
        samples_per_shard (int): shard membership is consecutive runs of this many planned samples.
    """
    ok = sorted((v for v in videos if v["status"] == "ok"), key=lambda v: (v["source"], v["video_id"]))
    planned = []
    for i, v in enumerate(ok):
        rng = np.random.default_rng(np.random.SeedSequence([int(config.seed), _stable_int(v["source"], v["video_id"])]))
        starts = sorted(int(s) for s in rng.choice(v["starts"], size=min(config.clips_per_video, len(v["starts"])),
                                                   replace=False))
        for start in starts:
            spec = sample_spec(rng, config.synth)
            donors = []  # the drawn donor first, then the fallbacks: the videos after it in id order
            if spec.task == Task.COPY_PASTE and len(ok) > 1:
                j = (i + 1 + int(rng.integers(len(ok) - 1))) % len(ok)  # another video
                for d in (ok[(j + n) % len(ok)] for n in range(min(len(ok), DONOR_CANDIDATES + 1))):
                    if d is not v:
                        donors.append([d["video_id"], clip_indices(d["num_frames"], videolib.parse_fps(d["fps"]),
                                                                   config, d["starts"][0], d.get("stride", 1))])
            donor_id, donor_indices = donors[0] if donors else ("", [])
            idx = clip_indices(v["num_frames"], videolib.parse_fps(v["fps"]), config, start, v.get("stride", 1))
            planned.append(dict(source=v["source"], video_id=v["video_id"], start=start, indices=idx,
                                fps=config.fps or v.get("clip_fps") or v["fps"], task=spec.task.augmentation,
                                seed=spec.seed, colour=list(spec.colour), prompt=spec.prompt,
                                donor_id=donor_id, donor_indices=donor_indices, donor_fallbacks=donors[1:]))
    return [PlannedSample(shard=n // samples_per_shard, position=n % samples_per_shard, **p)
            for n, p in enumerate(planned)]


def estimate_sample_bytes(config: ShardsConfig) -> int:
    """Approximate bytes of one sample from the clip size and the backbone's latent geometry (no weights read).

    Latents (SCE, target, condition) dominate, plus Wan's text states (prompt and negative prompt, fp16).
    """
    bb = config.backbone_config()
    t, h, w = config.frames, config.height, config.width
    if bb.latent_map == "pixel_unshuffle":
        f = bb.unshuffle_factor
        t_lat, c, s = t, 3 * f * f, f
    elif config.backbone_kind == "wan":
        t_lat, c, s = (t + 2) // 4 + 1 if t % 4 != 1 else (t - 1) // 4 + 1, (bb.vae or {}).get("z_dim", 16), 8
    else:
        t_lat, c, s = t, 4, 8
    latent = t_lat * c * (h // s) * (w // s) * 2
    text = 0
    if config.backbone_kind == "wan":
        text = 2 * bb.text_len * bb.transformer.get("text_dim", 4096) * 2
    return int(3 * latent + text + h * w * 3 + t * h * w // 8 + 4096)
