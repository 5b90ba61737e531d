"""The Wan2.1 I2V backbone's configuration (``WanBackboneConfig``) and the published model sizes it defaults to."""

from __future__ import annotations

from dataclasses import dataclass, field

# Wan2.1-I2V-14B-480P-Diffusers transformer/config.json.
WAN_I2V_14B = dict(patch_size=[1, 2, 2], num_attention_heads=40, attention_head_dim=128, in_channels=36,
                   out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
                   qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280, added_kv_proj_dim=5120,
                   rope_max_seq_len=1024)
_CLIP_H = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
               image_size=224, patch_size=14, hidden_act="gelu")
_UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                 feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)


@dataclass(frozen=True)
class WanBackboneConfig:
    """Configuration of the Wan I2V backbone (saved as JSON beside every GenProp checkpoint).

    Args:
        pretrained (str | None, default None): local directory or hub id of a Wan I2V diffusers pipeline
            (``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``image_encoder/``).
        latent_map (str, default "vae"): "vae" (AutoencoderKLWan) or "pixel_unshuffle".
        unshuffle_factor (int, default 4): factor of the pixel-unshuffle map.
        pad_frames (bool, default False): pad clips to T = 1 (mod 4) and crop back instead of refusing.
        transformer (dict): ``WanTransformer3DModel`` kwargs (default: I2V 14B-480P).
        vae (dict | None): ``AutoencoderKLWan`` kwargs.
        text_encoder (dict | None): ``UMT5Config`` kwargs; None = learned null text embedding.
        image_encoder (dict | None): ``CLIPVisionConfig`` kwargs; None = no image conditioning.
        text_len (int, default 512): text tokens (zero-padded as the pipeline).
        flow_shift (float, default 3.0): timestep shift (3.0 for 480P, 5.0 for 720P) of the configured schedulers.
        scheduler (str, default "auto"): the sampler's scheduler: "auto" = the ``pretrained`` folder's own
            (``scheduler/``; Wan2.1-I2V-480P ships UniPC, flow prediction, shift 3), else flow-match Euler;
            "flow_match_euler" or "unipc" pick one with ``flow_shift``.
        guidance (float, default 5.0): CFG scale (the paper's internal DiT used 20; pass it as a setting).
        num_steps (int, default 50): sampling steps.
        seed (int, default 0): seed for building from config.
        first_frame_anchor (bool, default False): the denoiser models the clip's difference from its first frame
            repeated (the anchor ``a``): it sees ``x_t - (1 - sigma) a`` and its output ``v_r`` becomes
            ``v_r - a``, which is exactly flow matching on ``x0 - a`` while the objective, sampler and latents stay
            those of ``x0``. An untrained-to-motion model then predicts "nothing moves" instead of re-synthesising
            the whole frame. For backbones trained with it (the procedural backbone); Wan2.1's weights expect False.
        sigma_data (float | None, default None): EDM-style preconditioning (Karras et al. 2022) for flow matching
            around the anchor (``a`` = 0 without ``first_frame_anchor``): with ``r_t = x_t - (1 - sigma) a`` the
            network sees ``c_in r_t`` and predicts ``v = c_skip r_t - a + c_out N`` where ``c_skip r_t`` is the best
            linear guess of ``eps - r`` for a residual of std ``sigma_data``, so the network learns a unit-variance
            correction instead of reproducing the noise (at sigma = 1 an all-zero ``N`` samples ``x0 = a``).
            None: the plain parameterisation (Wan2.1's weights).
    """

    pretrained: str | None = None
    latent_map: str = "vae"
    unshuffle_factor: int = 4
    pad_frames: bool = False
    transformer: dict = field(default_factory=lambda: dict(WAN_I2V_14B))
    vae: dict | None = field(default_factory=dict)
    text_encoder: dict | None = field(default_factory=lambda: dict(_UMT5_XXL))
    image_encoder: dict | None = field(default_factory=lambda: dict(_CLIP_H))
    text_len: int = 512
    flow_shift: float = 3.0
    scheduler: str = "auto"
    guidance: float = 5.0
    num_steps: int = 50
    seed: int = 0
    first_frame_anchor: bool = False
    sigma_data: float | None = None

    @classmethod
    def tiny(cls, latent_map: str = "pixel_unshuffle", encoders: bool = False, pad_frames: bool = False,
             num_layers: int = 4) -> "WanBackboneConfig":
        """A few-hundred-K-parameter Wan for CPU tests.

        Args:
            latent_map (str): "pixel_unshuffle" (8x8x48 grid from 32x32 pixels) or "vae" (tiny AutoencoderKLWan,
                4x4x16 from 32x32 pixels, 4x time compression).
            encoders (bool): tiny UMT5 + CLIP encoders, or none (learned null text embedding, no image branch).
            pad_frames (bool): see the class docstring.
            num_layers (int): transformer blocks.
        """
        tf, c = (1, 48) if latent_map == "pixel_unshuffle" else (4, 16)
        transformer = dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=2 * c + tf,
                           out_channels=c, text_dim=16, freq_dim=16, ffn_dim=48, num_layers=num_layers,
                           cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                           image_dim=16 if encoders else None, added_kv_proj_dim=24 if encoders else None,
                           rope_max_seq_len=32)
        vae = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                   temperal_downsample=[False, True, True]) if latent_map == "vae" else None
        text = dict(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                    relative_attention_num_buckets=8) if encoders else None
        image = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                     patch_size=8) if encoders else None
        return cls(latent_map=latent_map, pad_frames=pad_frames, transformer=transformer, vae=vae, text_encoder=text,
                   image_encoder=image, text_len=8, num_steps=3)
