"""The Stable Video Diffusion backbone's configuration (``SVDBackboneConfig``) and the SVD-XT sizes it defaults to."""

from __future__ import annotations

from dataclasses import dataclass, field

# CLIP ViT-H/14 vision tower of SVD-XT (image_encoder/config.json).
_SVD_CLIP = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                 image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")


@dataclass(frozen=True)
class SVDBackboneConfig:
    """Configuration of the SVD backbone (saved as JSON beside every GenProp checkpoint).

    Args:
        pretrained (str | None, default None): local directory or hub id of an SVD pipeline
            (``unet/``, ``vae/``, ``image_encoder/``); None builds from the dicts below under ``seed``.
        latent_map (str, default "vae"): "vae" (AutoencoderKLTemporalDecoder) or "pixel_unshuffle".
        unshuffle_factor (int, default 4): factor of the pixel-unshuffle map.
        unet (dict): ``UNetSpatioTemporalConditionModel`` kwargs; {} = SVD-XT.
        vae (dict | None): ``AutoencoderKLTemporalDecoder`` kwargs; {} = SVD's VAE.
        image_encoder (dict | None): ``CLIPVisionConfig`` kwargs; None = no encoder, a learned null embedding.
        num_steps (int, default 25), min_guidance (1.0), max_guidance (3.0): sampling as the pipeline.
        fps (int, default 7), motion_bucket_id (int, 127), noise_aug_strength (float, 0.02): added time ids.
        decode_chunk_size (int | None, default 14): frames per call of the temporal VAE decoder, the pipeline's
            ``decode_chunk_size`` (its decoder mixes the frames of one call, so this changes the frames); 14 bounds
            the decoder's memory (SVD-XT at 576x1024: ~10 GB in fp16) where the pipeline's default, None, decodes
            every frame of the clip at once.
        p_mean (float, 0.7), p_std (float, 1.6): log-normal training sigma distribution (EDM).
        seed (int, default 0): seed for building from config.
    """

    pretrained: str | None = None
    latent_map: str = "vae"
    unshuffle_factor: int = 4
    unet: dict = field(default_factory=dict)
    vae: dict | None = field(default_factory=dict)
    image_encoder: dict | None = field(default_factory=lambda: dict(_SVD_CLIP))
    num_steps: int = 25
    min_guidance: float = 1.0
    max_guidance: float = 3.0
    fps: int = 7
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    decode_chunk_size: int | None = 14
    p_mean: float = 0.7
    p_std: float = 1.6
    seed: int = 0

    @classmethod
    def tiny(cls, latent_map: str = "pixel_unshuffle", image_encoder: bool = False) -> "SVDBackboneConfig":
        """A few-hundred-K-parameter SVD for CPU tests (8x8 latent grid from 32x32 or 16x16 pixels)."""
        c = 48 if latent_map == "pixel_unshuffle" else 4
        unet = dict(block_out_channels=[32, 64], down_block_types=["CrossAttnDownBlockSpatioTemporal",
                    "DownBlockSpatioTemporal"], up_block_types=["UpBlockSpatioTemporal",
                    "CrossAttnUpBlockSpatioTemporal"], cross_attention_dim=32, num_attention_heads=[2, 4],
                    in_channels=2 * c, out_channels=c, layers_per_block=1, sample_size=8,
                    addition_time_embed_dim=8, projection_class_embeddings_input_dim=24, num_frames=5)
        vae = dict(block_out_channels=[32, 32], in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                   down_block_types=["DownEncoderBlock2D"] * 2) if latent_map == "vae" else None
        enc = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                   patch_size=8, projection_dim=32) if image_encoder else None
        return cls(latent_map=latent_map, unet=unet, vae=vae, image_encoder=enc, num_steps=3)
