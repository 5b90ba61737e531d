"""Latent maps: video pixels <-> the latent grid a backbone denoises.

Every map uses one layout on both sides:
    video   (B, T, 3, H, W) in [-1, 1]
    latents (B, T_lat, C, h, w)
``temporal_factor`` says how many video frames one latent frame holds (Wan's VAE: 4, with the first
latent frame holding one frame, so T_lat = 1 + (T - 1) / 4); ``spatial_factor`` is H / h. Every map has the
members of ``interface.LatentMap``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def valid_frame_counts(num_frames: int, temporal_factor: int) -> tuple[int, int]:
    """The nearest frame counts around ``num_frames`` that a VAE compressing time by ``temporal_factor`` keeps.

    Args:
        num_frames (int): the requested number of video frames.
        temporal_factor (int): video frames per latent frame (first latent frame = 1 video frame).

    Returns:
        (below, above): the largest valid count <= num_frames and the smallest valid count >= num_frames.
    """
    below = (num_frames - 1) // temporal_factor * temporal_factor + 1
    above = below if below == num_frames else below + temporal_factor
    return max(below, 1), above


def choose_latent_map(name: str, vae_map, unshuffle_factor: int) -> nn.Module:
    """The latent map a backbone config names: ``"vae"`` -> ``vae_map()`` (the backbone's own VAE map),
    ``"pixel_unshuffle"`` -> :class:`PixelUnshuffleLatents`.

    Raises:
        ValueError: any other name.
    """
    if name == "vae":
        return vae_map()
    if name == "pixel_unshuffle":
        return PixelUnshuffleLatents(unshuffle_factor)
    raise ValueError(f"unknown latent_map {name!r}; expected 'vae' or 'pixel_unshuffle'")


def _enable_vae_tiling(vae: nn.Module) -> bool:
    tile = getattr(vae, "enable_tiling", None)  # diffusers' VAEs; a VAE class without tiling has none
    if tile is None:
        return False
    tile()
    return True


def latent_frame_count(num_frames: int, temporal_factor: int) -> int:
    """Latent frames for ``num_frames`` video frames (num_frames must be valid)."""
    return (num_frames - 1) // temporal_factor + 1


class PixelUnshuffleLatents(nn.Module):
    """Lossless latent map for small backbones trained from scratch: pixel-unshuffle by ``factor``.

    (B, T, 3, H, W) -> (B, T, 3 * factor**2, H / factor, W / factor); ``decode`` is the exact inverse.

    Args:
        factor (int): spatial down-sampling factor; H and W must be multiples of it.
    """

    temporal_factor = 1
    scaling_factor = 1.0

    def __init__(self, factor: int = 4):
        super().__init__()
        self.factor = int(factor)
        self.latent_channels = 3 * self.factor**2
        self.spatial_factor = self.factor

    def padded_frame_count(self, num_frames: int) -> int:
        """Every frame count encodes as it is."""
        return num_frames

    def enable_tiling(self) -> bool:
        """No VAE to tile (the map is per pixel block): False."""
        return False

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Video (B, T, 3, H, W) -> latents (B, T, 3 f^2, H/f, W/f)."""
        b, t, c, h, w = video.shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"pixel-unshuffle by {self.factor} needs H and W divisible by it, got {h}x{w}")
        return F.pixel_unshuffle(video.flatten(0, 1), self.factor).unflatten(0, (b, t))

    def decode(self, latents: torch.Tensor, num_frames: int | None = None,
               decode_chunk_size: int | None = None) -> torch.Tensor:
        """Latents (B, T, C, h, w) -> video (B, T, 3, h f, w f) (frame by frame: ``decode_chunk_size`` is unused)."""
        b, t = latents.shape[:2]
        video = F.pixel_shuffle(latents.flatten(0, 1), self.factor).unflatten(0, (b, t))
        return video if num_frames is None else video[:, :num_frames]


class SVDVaeLatents(nn.Module):
    """``AutoencoderKLTemporalDecoder`` as a latent map, scaled as ``StableVideoDiffusionPipeline`` does.

    Encoding uses the posterior mode (deterministic, as the pipeline does for its condition frame);
    latents are multiplied by ``vae.config.scaling_factor``; decoding divides it back out.

    Args:
        vae (AutoencoderKLTemporalDecoder): the frozen VAE.
        decode_chunk_size (int | None, default 14): frames per decoder call (the pipeline's ``decode_chunk_size``;
            None = all at once).
    """

    temporal_factor = 1

    def __init__(self, vae: nn.Module, decode_chunk_size: int | None = 14):
        super().__init__()
        self.vae = vae
        self.decode_chunk_size = decode_chunk_size
        self.scaling_factor = float(vae.config.scaling_factor)
        self.latent_channels = int(vae.config.latent_channels)
        self.spatial_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    def padded_frame_count(self, num_frames: int) -> int:
        """Every frame count encodes as it is (the image VAE works frame by frame)."""
        return num_frames

    def enable_tiling(self) -> bool:
        """Tile the VAE's encode/decode where it can; returns whether it did."""
        return _enable_vae_tiling(self.vae)

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Video (B, T, 3, H, W) -> scaled latents (B, T, C, H/8, W/8)."""
        b, t = video.shape[:2]
        z = self.vae.encode(video.flatten(0, 1)).latent_dist.mode()
        return (z * self.scaling_factor).unflatten(0, (b, t))

    def decode(self, latents: torch.Tensor, num_frames: int | None = None,
               decode_chunk_size: int | None = None) -> torch.Tensor:
        """Scaled latents (B, T, C, h, w) -> video (B, T, 3, H, W), decoded ``decode_chunk_size`` frames per call
        (None = this map's own), as the pipeline (its frames flattened over the batch)."""
        b, t = latents.shape[:2]
        z = latents.flatten(0, 1) / self.scaling_factor
        frames, step = [], decode_chunk_size or self.decode_chunk_size or z.shape[0]
        for i in range(0, z.shape[0], step):
            chunk = z[i : i + step]
            frames.append(self.vae.decode(chunk, num_frames=chunk.shape[0]).sample)
        video = torch.cat(frames).unflatten(0, (b, t))
        return video if num_frames is None else video[:, :num_frames]


class WanVaeLatents(nn.Module):
    """``AutoencoderKLWan`` as a latent map, normalised with ``latents_mean``/``latents_std`` as ``WanImageToVideoPipeline``.

    The VAE compresses time by 4 with the first latent frame holding one video frame, so a clip
    must have T = 1 (mod 4) frames. ``AutoencoderKLWan`` itself silently drops the remainder (T = 16
    gives 13 decoded frames); this map never does. With ``pad=False`` it raises a ``ValueError``
    naming T and the nearest valid counts; with ``pad=True`` it repeats the last frame up to the next
    valid count and ``decode(..., num_frames=T)`` crops back to T.

    Args:
        vae (AutoencoderKLWan): the frozen VAE.
        pad (bool, default False): pad to the next valid frame count instead of refusing.
    """

    def __init__(self, vae: nn.Module, pad: bool = False):
        super().__init__()
        self.vae = vae
        self.pad = pad
        self.temporal_factor = int(getattr(vae.config, "scale_factor_temporal", 4))
        self.spatial_factor = int(getattr(vae.config, "scale_factor_spatial", 8))
        self.latent_channels = int(vae.config.z_dim)
        self.scaling_factor = 1.0
        self.register_buffer("mean", torch.tensor(vae.config.latents_mean).view(1, 1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(vae.config.latents_std).view(1, 1, -1, 1, 1), persistent=False)

    def padded_frame_count(self, num_frames: int) -> int:
        """The frame count this map encodes for ``num_frames`` input frames (or raises ValueError)."""
        below, above = valid_frame_counts(num_frames, self.temporal_factor)
        if below == num_frames:
            return num_frames
        if not self.pad:
            raise ValueError(
                f"Wan's VAE compresses time by {self.temporal_factor}: a clip needs T = 1 (mod "
                f"{self.temporal_factor}) frames, got T = {num_frames}; the nearest valid counts are {below} and "
                f"{above}. Trim or pad the clip, or build the latent map with pad=True (pads to {above} frames by "
                f"repeating the last frame and crops back on decode)."
            )
        return above

    def enable_tiling(self) -> bool:
        """Tile the VAE's encode/decode where it can; returns whether it did."""
        return _enable_vae_tiling(self.vae)

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Video (B, T, 3, H, W) -> normalised latents (B, 1 + (T' - 1) / 4, 16, H/8, W/8), T' the padded count."""
        t = video.shape[1]
        t_pad = self.padded_frame_count(t)
        if t_pad != t:
            video = torch.cat([video, video[:, -1:].expand(-1, t_pad - t, -1, -1, -1)], dim=1)
        z = self.vae.encode(video.transpose(1, 2)).latent_dist.mode()  # (B, C, T_lat, h, w)
        z = z.transpose(1, 2)  # (B, T_lat, C, h, w)
        return (z - self.mean.to(z.dtype)) / self.std.to(z.dtype)

    def decode(self, latents: torch.Tensor, num_frames: int | None = None,
               decode_chunk_size: int | None = None) -> torch.Tensor:
        """Normalised latents (B, T_lat, C, h, w) -> video (B, T, 3, H, W), cropped to ``num_frames`` if given (the
        causal decoder goes one latent frame at a time: ``decode_chunk_size`` is unused)."""
        z = latents * self.std.to(latents.dtype) + self.mean.to(latents.dtype)
        video = self.vae.decode(z.transpose(1, 2)).sample.transpose(1, 2)  # (B, T, 3, H, W)
        return video if num_frames is None else video[:, :num_frames]
