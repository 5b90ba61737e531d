"""Latents and G's conditioning of a routed pair, with the backbone adapter (loaded once by the caller)."""

from __future__ import annotations

import numpy as np
import torch

from genprop.losses import loss_masks
from genprop.shards.config import ShardsConfig, backbone_hash, config_hash
from genprop.shards.sample import encode_members, sample_key
from genprop.shards.tar_writer import sample_tar_bytes
from genprop.synth import SyntheticPair


def _video_tensor(video: np.ndarray, device) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, T, 3, H, W) float in [-1, 1]."""
    return (torch.from_numpy(video).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1)[None]


class SampleEncoder:
    """Turns a routed pair into a sample's tar blocks: latents, conditioning, masks, meta.

    Every sample is encoded alone under its own seed, so its bytes never depend on which other samples
    shared a Ray batch.

    Args:
        config (ShardsConfig): the job config (backbone, hashes for the meta).
        backbone (nn.Module | None, default None): an adapter already built (default: built from the config).
        device (str | None, default None): None = "cuda" when available, else "cpu".
    """

    def __init__(self, config: ShardsConfig, backbone=None, device: str | None = None):
        from genprop.models.backbones import build_backbone

        self.config = config
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.backbone = (backbone or build_backbone(config.backbone_config())).to(self.device).eval()
        self.config_hash = config_hash(config)
        self.backbone_hash = backbone_hash(config)

    @torch.no_grad()
    def encode(self, pair: SyntheticPair, row: dict) -> tuple[str, bytes]:
        """The key and tar blocks of one sample.

        Args:
            pair (SyntheticPair): the routed pair.
            row (dict): its planned sample (source, video id, start, indices, seed).
        """
        bb, dev = self.backbone, self.device
        t = pair.mask.shape[0]
        # 1. latents of the SCE input and the target, (1, T_lat, C, h, w)
        sce = bb.encode_video(_video_tensor(pair.sce_video, dev))
        target = bb.encode_video(_video_tensor(pair.target_video, dev))
        # 2. G's conditioning from G's first frame (the target's), seeded per sample (SVD's noise augmentation)
        first = _video_tensor(pair.cond_frame[None], dev)  # (1, 1, 3, H, W)
        gen = torch.Generator(device=dev).manual_seed(int(row["seed"]))
        cond = bb.encode_condition(first[:, 0], pair.prompt, generator=gen, num_frames=t)
        cond_latents = bb.latent_map.encode(first)[0, 0]  # (C, h, w)
        # 3. the loss masks: Gaussian-downsampled latent mask and the MPD target
        latent_mask, mpd_target = loss_masks(torch.from_numpy(pair.mask[None]).to(dev).float(), bb.latent_map,
                                             sce.shape[1])
        key = sample_key(row["source"], row["video_id"], pair.object_id, row["start"], pair.task.augmentation)
        meta = {"key": key, "source": row["source"], "video": row["video_id"], "object": pair.object_id,
                "task": pair.task.augmentation, "task_id": pair.task_id, "start": int(row["start"]),
                "frames": [int(i) for i in row["indices"]], "fps": row.get("fps", ""),
                "size": [int(pair.mask.shape[1]), int(pair.mask.shape[2])], "seed": int(row["seed"]),
                "donor": row["donor_id"], "synth": pair.info, "backbone": self.config.backbone_kind,
                "backbone_hash": self.backbone_hash, "config_hash": self.config_hash,
                "condition": sorted(cond)}
        members = encode_members(
            sce_latents=sce[0].float().cpu().numpy(), target_latents=target[0].float().cpu().numpy(),
            cond_frame=pair.cond_frame, cond_latents=cond_latents.float().cpu().numpy(),
            condition={k: v[0].float().cpu().numpy() for k, v in cond.items()}, mask=pair.mask,
            latent_mask=latent_mask[0].cpu().numpy(), mpd_target=mpd_target[0].cpu().numpy(),
            task_id=pair.task_id, prompt=pair.prompt, meta=meta)
        return key, sample_tar_bytes(key, members)
