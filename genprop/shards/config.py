"""The shard job's configuration, its hash (what makes two outputs comparable), and the backbone it names."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from genprop.datasets.procedural import WorldConfig
from genprop.synth import SynthConfig

# Fields that change how the job runs but not one byte of what it writes; left out of the config hash.
EXECUTION_FIELDS = ("output", "encode_actors", "encode_num_cpus", "encode_num_gpus", "pair_num_cpus", "batch_size",
                    "fail_after_shards", "kill_encoder_after_samples")


@dataclass(frozen=True)
class ShardsConfig:
    """Everything ``make_shards`` needs (YAML: ``jobs/configs/{tiny,svd,wan}.yaml``).

    Args:
        input (str, default ""): dataset root (YouTube-VOS, DAVIS or SA-V layout; path, file://, s3://);
            "" = the procedural world ``world`` written under ``<output>/_world``.
        output (str, default ""): where shards, manifest and ``_SUCCESS`` go.
        format (str, default "auto"): the input layout ("auto", "youtube-vos", "davis", "sav").
        world (WorldConfig): the procedural world used when ``input`` is "".
        frames (int, default 9): T, frames per clip (T = 1 mod 4 for Wan's VAE).
        height, width (int, default 32): clip size after the random crop.
        fps (str | None, default None): resample clips to this rate; None keeps every frame.
        clips_per_video (int, default 1): clips (distinct start frames) drawn per video.
        crop_scale (tuple[float, float], default (0.8, 1.0)): the crop's height as a fraction of the frame's.
        seed (int, default 0): seeds the plan (clip starts, tasks, donors) and so every sample.
        synth (SynthConfig): the augmentations.
        backbone_kind (str, default "wan"): "wan" or "svd".
        backbone (dict): the backbone config's fields (``WanBackboneConfig`` / ``SVDBackboneConfig``); an entry
            ``tiny: {...}`` starts from ``<Config>.tiny(**tiny)`` instead of the full-size defaults.
        samples_per_shard (int | None, default None): None = from ``shard_target_bytes`` and the estimated
            sample size.
        shard_target_bytes (int, default 500_000_000): approximate shard size.
        decode_timeout_s (float, default 120): per-video decode timeout (mp4 sources).
        limit (int | None, default None): use only the first N videos (sorted ids).
        verify (bool, default False): the listing stage decodes every frame and annotation of each video
            (``genprop.datasets.verify``) and skips a video with any bad item, naming each; without it a bad frame
            that no clip touches goes unnoticed, and one a clip touches skips that sample only.
        encode_actors (int, default 1): actors in the encoding pool (one backbone each).
        encode_num_cpus, encode_num_gpus (float, default 0.5, 0): resources per encoding actor.
        pair_num_cpus (float, default 0.5): CPUs per decode-and-synth task.
        batch_size (int, default 4): rows per ``map_batches`` call.
        fail_after_shards (int | None, default None): TEST HOOK: fail on purpose while writing the shard after
            this many shards were written by this run (proves atomic, resumable writes).
        kill_encoder_after_samples (int | None, default None): TEST HOOK: an encoding actor that has encoded
            this many samples (k >= 1) kills its worker process (``os._exit``) when handed the next batch, after
            writing ``<output>/_test_hook/encoder-exit-<pid>`` (proves that a worker dying mid-shard publishes
            nothing partial and that a rerun completes the set).
    """

    input: str = ""
    output: str = ""
    format: str = "auto"
    world: WorldConfig = field(default_factory=lambda: WorldConfig(videos=4, frames=9, height=32, width=32))
    frames: int = 9
    height: int = 32
    width: int = 32
    fps: str | None = None
    clips_per_video: int = 1
    crop_scale: tuple[float, float] = (0.8, 1.0)
    seed: int = 0
    synth: SynthConfig = field(default_factory=SynthConfig)
    backbone_kind: str = "wan"
    backbone: dict = field(default_factory=dict)
    samples_per_shard: int | None = None
    shard_target_bytes: int = 500_000_000
    decode_timeout_s: float = 120.0
    limit: int | None = None
    verify: bool = False
    encode_actors: int = 1
    encode_num_cpus: float = 0.5
    encode_num_gpus: float = 0.0
    pair_num_cpus: float = 0.5
    batch_size: int = 4
    fail_after_shards: int | None = None
    kill_encoder_after_samples: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "crop_scale", tuple(float(c) for c in self.crop_scale))
        if self.backbone_kind not in ("wan", "svd"):
            raise ValueError(f"backbone_kind must be 'wan' or 'svd', not {self.backbone_kind!r}")
        if self.frames < 1 or self.height < 8 or self.width < 8 or self.clips_per_video < 1:
            raise ValueError(f"bad clip shape: {self.frames} frames {self.height}x{self.width}, "
                             f"{self.clips_per_video} clips per video")
        if self.kill_encoder_after_samples is not None and self.kill_encoder_after_samples < 1:
            raise ValueError(f"kill_encoder_after_samples must be >= 1, got {self.kill_encoder_after_samples}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must be 0 < lo <= hi <= 1, got {self.crop_scale}")
        bb = self.backbone_config()
        if self.backbone_kind == "wan" and bb.latent_map == "vae" and not bb.pad_frames and self.frames % 4 != 1:
            raise ValueError(f"Wan's VAE needs T = 1 (mod 4) frames, got frames={self.frames} "
                             "(or set backbone.pad_frames: true)")

    @classmethod
    def tiny(cls, **overrides) -> "ShardsConfig":
        """The embedded CPU default: 4 procedural 9-frame 32x32 videos, tiny pixel-unshuffle Wan, 2 samples/shard."""
        base = dict(backbone={"tiny": {"latent_map": "pixel_unshuffle", "encoders": True}}, samples_per_shard=2,
                    synth=SynthConfig.tiny())
        return cls(**{**base, **overrides})

    def backbone_config(self):
        """The ``WanBackboneConfig`` / ``SVDBackboneConfig`` this config names."""
        from genprop.models.backbones import SVDBackboneConfig, WanBackboneConfig

        cls = WanBackboneConfig if self.backbone_kind == "wan" else SVDBackboneConfig
        values = dict(self.backbone)
        tiny = values.pop("tiny", None)
        base = dataclasses.asdict(cls.tiny(**tiny)) if tiny is not None else {}
        return cls(**{**base, **values})

    def world_url(self) -> str:
        """Where the procedural world goes when ``input`` is ""."""
        return self.output.rstrip("/") + "/_world"

    def input_url(self) -> str:
        """The dataset root actually read."""
        return self.input or self.world_url()


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def config_hash(config: ShardsConfig) -> str:
    """16 hex digits identifying what the output contains (execution-only fields left out).

    Args:
        config (ShardsConfig): the job's config.
    """
    d = json.loads(json.dumps(dataclasses.asdict(config)))
    for k in EXECUTION_FIELDS:
        d.pop(k, None)
    if config.input:  # the world is not read then
        d.pop("world", None)
    return _digest(d)


def backbone_hash(config: ShardsConfig) -> str:
    """16 hex digits of the backbone config (recorded in every sample's meta)."""
    return _digest(json.loads(json.dumps(dataclasses.asdict(config.backbone_config()))))
