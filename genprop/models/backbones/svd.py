"""Stable Video Diffusion adapter: ``UNetSpatioTemporalConditionModel`` + a latent map + CLIP image encoder.

What counts as a "block" of the U-Net (for the SCE copy): the four down blocks and then the mid
block, in data-flow order (``encoder_blocks()``); the input layer is ``conv_in``. A down block has
several outputs (one residual per resnet plus the down-sampler's), all fed to the decoder through
skip connections, and the last one is also the block's output sample; an injection adds to each of
them, ControlNet-style. The "final block" (MPD copy) is the last up block, fed from the
penultimate up block's output and the skip residuals that the last up block consumes.

Objective: EDM preconditioning as ``StableVideoDiffusionPipeline`` + ``EulerDiscreteScheduler``
(v-prediction, sigma_data = 1): model input c_in * (x0 + sigma * eps), timestep 0.25 * log(sigma),
target (x0 - c_skip * x_noisy) / c_out, so plain MSE on the raw output equals the EDM-weighted
denoising loss. log(sigma) ~ N(p_mean, p_std) in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from genprop.models.backbones.conditioning import default_clip_processor, load_processor, svd_clip_pixels
from genprop.models.backbones.export import load_extras, save_backbone
from genprop.models.backbones.interface import PositionalCapacity, TrainingSample, call_block, freeze, seeded
from genprop.models.backbones.latent_maps import SVDVaeLatents, choose_latent_map
from genprop.models.backbones.svd_config import SVDBackboneConfig
from genprop.sample_draws import normal



@dataclass
class SVDContext:
    """Everything the U-Net's blocks need besides the hidden state (computed once per forward)."""

    x_in: torch.Tensor  # (B*T, C_in, h, w) channel-concatenated model input
    emb_base: torch.Tensor  # (B, E) time + added-time embedding
    emb: torch.Tensor  # (B*T, E)
    context: torch.Tensor  # (B*T, S, D) cross-attention states
    indicator: torch.Tensor  # (B, T) image_only_indicator
    batch: int
    frames: int
    forward_upsample_size: bool


class SVDBackbone(nn.Module):
    """SVD as a GenProp backbone (frozen). Build with :meth:`build`.

    Args:
        config (SVDBackboneConfig): the configuration.
        unet (UNetSpatioTemporalConditionModel): the denoiser.
        latent_map (nn.Module): a map from ``latent_maps``.
        image_encoder (CLIPVisionModelWithProjection | None): None = learned null embedding.
    """

    kind = "svd"
    feature_layout = "grid"

    def __init__(self, config: SVDBackboneConfig, unet: nn.Module, latent_map: nn.Module,
                 image_encoder: nn.Module | None = None, image_processor=None):
        super().__init__()
        self.config = config
        self.unet = unet
        self.latent_map = latent_map
        self.image_encoder = image_encoder
        if image_encoder is not None and image_processor is None:
            image_processor = default_clip_processor(int(image_encoder.config.image_size))
        self.image_processor = image_processor  # the folder's feature extractor (normalisation only)
        if image_encoder is None:
            self.null_image_embedding = nn.Parameter(torch.zeros(1, 1, unet.config.cross_attention_dim))
        # Recompute block activations in backward (set by the trainer); off at inference anyway.
        self.gradient_checkpointing = False
        freeze(self)

    @property
    def denoiser(self) -> nn.Module:
        """The diffusers denoiser (what the ``i2v`` objective trains)."""
        return self.unet

    def condition_encoders(self) -> list[nn.Module]:
        """The frozen encoders of G's conditioning this adapter has (CLIP)."""
        return [self.image_encoder] if self.image_encoder is not None else []

    def denoiser_blocks(self) -> list[nn.Module]:
        """The U-Net's down, mid and up blocks (the units FSDP shards when the ``i2v`` objective trains them)."""
        return [*self.unet.down_blocks, self.unet.mid_block, *self.unet.up_blocks]

    @property
    def spatial_alignment(self) -> int:
        """Pixels each frame side must be a multiple of: the latent factor times the U-Net's down-sampling."""
        return int(self.latent_map.spatial_factor) * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def default_working_area(self) -> int:
        """The U-Net's ``sample_size`` latent square in pixels (SVD-XT: 96 -> 768^2, the area of its 576x1024)."""
        return (int(self.unet.config.sample_size) * int(self.latent_map.spatial_factor)) ** 2

    @property
    def default_window(self) -> int:
        """The U-Net's ``num_frames`` (SVD-XT: 25)."""
        return int(self.unet.config.num_frames)

    def positional_capacity(self) -> PositionalCapacity:
        """Unbounded: the U-Net has no positional table that limits the window or the frame."""
        return PositionalCapacity()

    def save_pretrained(self, directory: str, weights: dict | None = None) -> None:
        """Write a folder ``build`` loads back via ``config.pretrained`` (see ``backbones/export.py``)."""
        save_backbone(self, directory, weights)

    # ----------------------------------------------------------------------------------- building
    @staticmethod
    def build_unet(config: SVDBackboneConfig) -> nn.Module:
        """The U-Net from ``config.unet`` (random init under the current RNG; works on the meta device)."""
        from diffusers import UNetSpatioTemporalConditionModel

        return UNetSpatioTemporalConditionModel(**config.unet)

    @classmethod
    def build(cls, config: SVDBackboneConfig, dtype=None) -> "SVDBackbone":
        """Load from ``config.pretrained`` (a local directory or hub id) or build from config under ``config.seed``,
        in ``dtype`` (None: as stored; see ``build_backbone``)."""
        from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        with seeded(config.seed):
            if config.pretrained:
                p = config.pretrained
                unet = UNetSpatioTemporalConditionModel.from_pretrained(p, subfolder="unet", torch_dtype=dtype)
                vae = (AutoencoderKLTemporalDecoder.from_pretrained(p, subfolder="vae", torch_dtype=dtype)
                       if config.latent_map == "vae" else None)
                enc = (CLIPVisionModelWithProjection.from_pretrained(p, subfolder="image_encoder", torch_dtype=dtype)
                       if config.image_encoder is not None else None)
            else:
                unet = cls.build_unet(config)
                vae = AutoencoderKLTemporalDecoder(**config.vae) if config.latent_map == "vae" else None
                enc = (CLIPVisionModelWithProjection(CLIPVisionConfig(**config.image_encoder))
                       if config.image_encoder is not None else None)
        latent_map = choose_latent_map(config.latent_map,
                                       lambda: SVDVaeLatents(vae, decode_chunk_size=config.decode_chunk_size),
                                       config.unshuffle_factor)
        processor = load_processor(config.pretrained, "feature_extractor") if enc is not None else None
        backbone = cls(config, unet, latent_map, enc, processor)
        load_extras(backbone, config.pretrained)  # learned null embedding of an exported world backbone
        return backbone if dtype is None else backbone.to(dtype)

    # ------------------------------------------------------------------------- data and condition
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video (B, T, 3, H, W) in [-1, 1] -> latents (B, T, C, h, w)."""
        return self.latent_map.encode(video)

    def decode_latents(self, latents: torch.Tensor, num_frames: int | None = None,
                       decode_chunk_size: int | None = None) -> torch.Tensor:
        """Latents (B, T, C, h, w) -> video (B, T, 3, H, W), ``decode_chunk_size`` frames per decoder call (the
        pipeline's meaning; None = ``config.decode_chunk_size``)."""
        return self.latent_map.decode(latents, num_frames, decode_chunk_size)

    def encode_condition(self, first_frame: torch.Tensor, prompt: str | list[str] | None = None,
                         generator: torch.Generator | None = None, num_frames: int | None = None
                         ) -> dict[str, torch.Tensor]:
        """The conditioning G needs, precomputable: CLIP image embedding, noise-augmented first-frame latents, time ids.

        Args:
            first_frame (Tensor): (B, 3, H, W) in [-1, 1].
            prompt: ignored (SVD is image-only); accepted so both backbones share one call.
            generator (torch.Generator | None): for the noise augmentation.
            num_frames: unused (the image latents are repeated over frames in ``prepare``).

        Returns:
            {"image_embeds": (B, 1, D), "image_latents": (B, C, h, w) (unscaled, as the pipeline),
             "added_time_ids": (B, 3)}.
        """
        b = first_frame.shape[0]
        c = self.config
        # 1. CLIP image embedding (or the learned null embedding of an encoder-less world backbone)
        if self.image_encoder is not None:  # the pipeline's antialiased resize and the feature extractor
            pixels = svd_clip_pixels(first_frame, self.image_processor, int(self.image_encoder.config.image_size))
            embeds = self.image_encoder(pixels.to(first_frame.dtype)).image_embeds.unsqueeze(1)
        else:
            embeds = self.null_image_embedding.expand(b, -1, -1)
        # 2. noise-augmented first frame -> unscaled latents (the pipeline's _encode_vae_image)
        noise = torch.randn(first_frame.shape, generator=generator, device=first_frame.device,
                            dtype=first_frame.dtype)
        aug = first_frame + c.noise_aug_strength * noise
        image_latents = self.latent_map.encode(aug[:, None])[:, 0] / self.latent_map.scaling_factor
        # 3. added time ids (SVD was conditioned on fps - 1)
        ids = torch.tensor([[c.fps - 1, c.motion_bucket_id, c.noise_aug_strength]], dtype=embeds.dtype,
                           device=first_frame.device).repeat(b, 1)
        return {"image_embeds": embeds, "image_latents": image_latents, "added_time_ids": ids}

    def null_condition(self, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The unconditional branch of CFG, as the pipeline: zero image embedding and zero image latents."""
        return {"image_embeds": torch.zeros_like(cond["image_embeds"]),
                "image_latents": torch.zeros_like(cond["image_latents"]),
                "added_time_ids": cond["added_time_ids"]}

    # -------------------------------------------------------------------- objective and schedule
    def training_sample(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> TrainingSample:
        """EDM noising of clean latents (B, T, C, h, w): log sigma ~ N(p_mean, p_std)."""
        b = latents.shape[0]
        log_sigma = normal(generator, (b,), latents.device) * self.config.p_std + self.config.p_mean
        sigma = log_sigma.exp().to(latents.dtype).view(b, 1, 1, 1, 1)
        noise = normal(generator, latents.shape, latents.device, latents.dtype)
        noisy = latents + sigma * noise
        c_in = 1 / (sigma**2 + 1).sqrt()
        c_skip = 1 / (sigma**2 + 1)
        c_out = -sigma / (sigma**2 + 1).sqrt()  # diffusers' v-prediction sign
        target = (latents - c_skip * noisy) / c_out
        return TrainingSample(model_input=noisy * c_in, timestep=0.25 * log_sigma.to(latents.dtype), target=target)

    def make_scheduler(self):
        """A fresh ``EulerDiscreteScheduler`` configured as SVD-XT's (EDM, Karras sigmas, v-prediction)."""
        from diffusers import EulerDiscreteScheduler

        return EulerDiscreteScheduler(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            prediction_type="v_prediction", interpolation_type="linear", use_karras_sigmas=True,
            sigma_min=0.002, sigma_max=700.0, timestep_spacing="leading", timestep_type="continuous",
            steps_offset=1, final_sigmas_type="zero")

    def initial_noise(self, scheduler, shape: tuple[int, ...], generator: torch.Generator | None,
                      device) -> torch.Tensor:
        """The sampler's starting noise (B, T, C, h, w), the pipeline's layout, scaled by ``init_noise_sigma``."""
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        return noise * float(scheduler.init_noise_sigma)

    def scale_model_input(self, scheduler, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The sampler's model input at timestep ``t``: EDM's ``c_in`` scaling, as the pipeline."""
        return scheduler.scale_model_input(x, t)

    def guidance_scale(self, num_latent_frames: int, scale: float | None = None) -> torch.Tensor:
        """The pipeline's per-frame guidance ramp, (1, T, 1, 1, 1); ``scale`` overrides it with a constant."""
        if scale is not None:
            return torch.full((1, num_latent_frames, 1, 1, 1), float(scale))
        ramp = torch.linspace(self.config.min_guidance, self.config.max_guidance, num_latent_frames)
        return ramp.view(1, -1, 1, 1, 1)

    # ---------------------------------------------------------------------------- the denoiser
    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
        """Plain backbone prediction (B, T, C, h, w); equals ``unet(cat(model_input, image latents), ...)``."""
        ctx = self.prepare(model_input, timestep, cond)
        prediction, _ = self.trunk(ctx, self.embed(ctx.x_in, ctx))
        return prediction

    def prepare(self, model_input: torch.Tensor, timestep, cond: dict) -> SVDContext:
        """Time embeddings, repeated cross-attention states and the channel-concatenated input (as the U-Net's forward)."""
        unet = self.unet
        b, t = model_input.shape[:2]
        image_latents = cond["image_latents"].unsqueeze(1).expand(-1, t, -1, -1, -1)
        sample = torch.cat([model_input, image_latents.to(model_input.dtype)], dim=2)  # (B, T, 2C, h, w)
        up_factor = 2**unet.num_upsamplers
        forward_upsample_size = any(s % up_factor != 0 for s in sample.shape[-2:])
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float32, device=sample.device)
        elif len(timesteps.shape) == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(b)
        t_emb = unet.time_proj(timesteps).to(dtype=sample.dtype)
        emb = unet.time_embedding(t_emb)
        time_embeds = unet.add_time_proj(cond["added_time_ids"].flatten()).reshape((b, -1)).to(emb.dtype)
        emb = emb + unet.add_embedding(time_embeds)
        context = cond["image_embeds"].to(sample.dtype)
        return SVDContext(
            x_in=sample.flatten(0, 1), emb_base=emb,
            emb=emb.repeat_interleave(t, dim=0, output_size=emb.shape[0] * t),
            context=context.repeat_interleave(t, dim=0, output_size=context.shape[0] * t),
            indicator=torch.zeros(b, t, dtype=sample.dtype, device=sample.device),
            batch=b, frames=t, forward_upsample_size=forward_upsample_size)

    def sce_input(self, model_input: torch.Tensor, sce_latents: torch.Tensor, cond: dict,
                  timestep=None) -> torch.Tensor:
        """The SCE's input, (B*T, 2C, h, w): the source latents take the condition-latent channels (unscaled like them).
        ``timestep`` is unused (accepted so both backbones share one call)."""
        src = (sce_latents / self.latent_map.scaling_factor).to(model_input.dtype)
        return torch.cat([model_input, src], dim=2).flatten(0, 1)

    @property
    def input_layer(self) -> nn.Module:
        """The U-Net's input layer (``conv_in``), which the SCE copies."""
        return self.unet.conv_in

    def embed(self, x_in: torch.Tensor, ctx: SVDContext, input_layer: nn.Module | None = None) -> torch.Tensor:
        """Input layer: (B*T, C_in, h, w) -> (B*T, C0, h, w)."""
        return (input_layer or self.unet.conv_in)(x_in)

    def encoder_blocks(self) -> list[nn.Module]:
        """The blocks the SCE may copy, in data-flow order: the down blocks, then the mid block."""
        return [*self.unet.down_blocks, self.unet.mid_block]

    def encoder_output_channels(self, index: int) -> list[int]:
        """Channels of each output (skip residual) of encoder block ``index``, one injection each."""
        channels = self.unet.config.block_out_channels
        down = self.unet.down_blocks
        if index == len(down):
            return [channels[-1]]
        block = down[index]
        n = len(block.resnets) + (len(block.downsamplers) if block.downsamplers is not None else 0)
        return [channels[index]] * n

    def _emb(self, ctx: SVDContext, time_offset: torch.Tensor | None) -> torch.Tensor:
        if time_offset is None:
            return ctx.emb
        return (ctx.emb_base + time_offset).repeat_interleave(ctx.frames, dim=0)

    def run_encoder_block(self, index: int, block: nn.Module, ctx: SVDContext, h: torch.Tensor,
                          time_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """Run encoder block ``index`` (G's or a copy); returns (output sample, outputs to inject into)."""
        emb = self._emb(ctx, time_offset)
        if index == len(self.unet.down_blocks):  # mid block
            h = call_block(block, self.gradient_checkpointing, hidden_states=h, temb=emb,
                           encoder_hidden_states=ctx.context, image_only_indicator=ctx.indicator)
            return h, (h,)
        kwargs = dict(hidden_states=h, temb=emb, image_only_indicator=ctx.indicator)
        if getattr(block, "has_cross_attention", False):
            kwargs["encoder_hidden_states"] = ctx.context
        return call_block(block, self.gradient_checkpointing, **kwargs)

    def _run_up_block(self, block, ctx, h, res, upsample_size, emb):
        kwargs = dict(hidden_states=h, temb=emb, res_hidden_states_tuple=res, upsample_size=upsample_size,
                      image_only_indicator=ctx.indicator)
        if getattr(block, "has_cross_attention", False):
            kwargs["encoder_hidden_states"] = ctx.context
        return call_block(block, self.gradient_checkpointing, **kwargs)

    def trunk(self, ctx: SVDContext, h0: torch.Tensor, injections: list | None = None):
        """All of G's blocks, adding ``injections[i]`` (one tensor per output) after encoder block i.

        Returns:
            (prediction (B, T, C, h, w), penultimate) where penultimate = (up-block input, its skips).
        """
        unet = self.unet
        injections = injections or []
        # 1. down blocks: inject into every skip residual; the last residual is the block's output
        sample, down_res = h0, (h0,)
        for i, block in enumerate(unet.down_blocks):
            sample, res = self.run_encoder_block(i, block, ctx, sample)
            if i < len(injections):
                res = tuple(r + d.to(r.dtype) for r, d in zip(res, injections[i]))
                sample = res[-1]
            down_res += res
        # 2. mid block
        n_down = len(unet.down_blocks)
        sample, _ = self.run_encoder_block(n_down, unet.mid_block, ctx, sample)
        if n_down < len(injections):
            sample = sample + injections[n_down][0].to(sample.dtype)
        # 3. up blocks; remember the last one's input for the MPD
        penultimate = None
        upsample_size = None
        for i, block in enumerate(unet.up_blocks):
            is_final = i == len(unet.up_blocks) - 1
            res = down_res[-len(block.resnets):]
            down_res = down_res[: -len(block.resnets)]
            if not is_final and ctx.forward_upsample_size:
                upsample_size = down_res[-1].shape[2:]
            if is_final:
                penultimate = (sample, res, upsample_size)
            sample = self._run_up_block(block, ctx, sample, res, upsample_size, ctx.emb)
        # 4. output head
        sample = unet.conv_out(unet.conv_act(unet.conv_norm_out(sample)))
        return sample.reshape(ctx.batch, ctx.frames, *sample.shape[1:]), penultimate

    def final_block(self) -> nn.Module:
        """The U-Net's last up block (the MPD copies it)."""
        return self.unet.up_blocks[-1]

    def run_final_block(self, block: nn.Module, ctx: SVDContext, penultimate,
                        time_offset: torch.Tensor | None = None) -> torch.Tensor:
        """Run (a copy of) the last up block on the penultimate up block's output -> (B*T, C0, h, w)."""
        h, res, upsample_size = penultimate
        return self._run_up_block(block, ctx, h, res, upsample_size, self._emb(ctx, time_offset))

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for a clip of ``num_frames`` video frames (no time compression)."""
        return num_frames

    def make_mask_head(self, per_pixel: int = 1) -> nn.Module:
        """The MPD's MLP: copied GroupNorm, SiLU, 1x1 conv, SiLU, 1x1 conv to ``temporal_factor * per_pixel`` values
        per latent pixel."""
        import copy

        c = self.unet.config.block_out_channels[0]
        return nn.Sequential(copy.deepcopy(self.unet.conv_norm_out), nn.SiLU(), nn.Conv2d(c, c, 1), nn.SiLU(),
                             nn.Conv2d(c, self.latent_map.temporal_factor * per_pixel, 1))

    def mask_grid(self, head_out: torch.Tensor, ctx: SVDContext) -> torch.Tensor:
        """Mask head output (B*T, K, h, w) -> (B, T_lat, K, h, w) (K values per latent pixel)."""
        return head_out.unflatten(0, (ctx.batch, ctx.frames))

    def feature_grid(self, feature: torch.Tensor, ctx: SVDContext) -> torch.Tensor:
        """An SCE feature (B*T, C, h, w) -> (B, T, C, h, w)."""
        return feature.unflatten(0, (ctx.batch, ctx.frames))

    @property
    def time_cond_dim(self) -> int:
        """Width of the time conditioning a task embedding is added to (the U-Net's time embedding)."""
        return self.unet.time_embedding.linear_2.out_features
