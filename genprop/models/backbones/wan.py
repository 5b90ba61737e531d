"""Wan2.1 image-to-video adapter: ``WanTransformer3DModel`` + a latent map + UMT5 text encoder + CLIP image encoder.

Blocks: the input layer is ``patch_embedding`` (the condition embedder's outputs are shared with
the SCE, not copied); the SCE copies the first N ``WanTransformerBlock``s; the MPD copies the last
one and is fed from the penultimate block's output. Conditioning as ``WanImageToVideoPipeline``:
the model input is [noisy latents, first-frame mask (``temporal_factor`` channels), latents of the
first frame followed by zero frames] on channels; CLIP penultimate hidden states; UMT5 text states
zero-padded to ``text_len``. Objective: flow matching, x_t = (1 - s) x0 + s eps, target eps - x0,
timestep 1000 s with s shifted by ``flow_shift`` (3.0 for 480P); sampling with
``FlowMatchEulerDiscreteScheduler``; default guidance 5.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from genprop.models.backbones.export import load_extras, save_backbone
from genprop.models.backbones.interface import PositionalCapacity, TrainingSample, call_block, freeze
from genprop.models.backbones.latent_maps import latent_frame_count
from genprop.models.backbones.conditioning import clean_prompt, default_clip_processor, to_pil
from genprop.models.backbones.wan_config import WanBackboneConfig
from genprop.models.backbones.wan_loading import build_transformer, load_wan_parts, make_wan_scheduler
from genprop.sample_draws import normal, uniform


# Wan2.1-I2V-480P's training size; the default working area of a real-size Wan.
WAN_480P_AREA = 480 * 832


@dataclass
class WanContext:
    """Everything the transformer blocks need besides the tokens (computed once per forward)."""

    x_in: torch.Tensor  # (B, C_in, F, H, W) channel-concatenated model input
    rotary: tuple  # (cos, sin)
    temb: torch.Tensor  # (B, D)
    timestep_proj: torch.Tensor  # (B, 6, D)
    context: torch.Tensor  # (B, L_img + L_txt, D)
    batch: int
    grid: tuple[int, int, int]  # tokens per axis (F', H', W')


class WanBackbone(nn.Module):
    """Wan I2V as a GenProp backbone (frozen). Build with :meth:`build`.

    Args:
        config (WanBackboneConfig): the configuration.
        transformer (WanTransformer3DModel): the denoiser.
        latent_map (nn.Module): a map from ``latent_maps``.
        text_encoder (UMT5EncoderModel | None), tokenizer (callable | None), image_encoder (CLIPVisionModel | None).
        image_processor (CLIPImageProcessor | None): the folder's (``image_processor/``); None = the pipelines'
            preprocessing at the encoder's size.
        scheduler_config (dict | None): the folder's ``scheduler/`` config (its ``_class_name`` included).
    """

    kind = "wan"
    feature_layout = "tokens"

    def __init__(self, config: WanBackboneConfig, transformer: nn.Module, latent_map: nn.Module,
                 text_encoder: nn.Module | None = None, tokenizer=None, image_encoder: nn.Module | None = None,
                 image_processor=None, scheduler_config: dict | None = None):
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.latent_map = latent_map
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.image_encoder = image_encoder
        if image_encoder is not None and image_processor is None:
            image_processor = default_clip_processor(int(image_encoder.config.image_size))
        self.image_processor = image_processor
        self.scheduler_config = scheduler_config
        if text_encoder is None:
            self.null_text_embedding = nn.Parameter(torch.zeros(1, config.text_len, transformer.config.text_dim))
        # Recompute block activations in backward (set by the trainer); off at inference anyway.
        self.gradient_checkpointing = False
        if tuple(transformer.config.patch_size)[0] != 1:
            raise ValueError("GenProp's Wan adapter assumes a temporal patch size of 1")
        freeze(self)


    @property
    def denoiser(self) -> nn.Module:
        """The diffusers denoiser (what the ``i2v`` objective trains)."""
        return self.transformer

    def condition_encoders(self) -> list[nn.Module]:
        """The frozen encoders of G's conditioning this adapter has (UMT5, CLIP)."""
        return [m for m in (self.text_encoder, self.image_encoder) if m is not None]

    def denoiser_blocks(self) -> list[nn.Module]:
        """The denoiser's blocks (the units FSDP shards when the ``i2v`` objective trains them)."""
        return list(self.transformer.blocks)

    @property
    def spatial_alignment(self) -> int:
        """Pixels each frame side must be a multiple of: the latent factor times the patch size."""
        return int(self.latent_map.spatial_factor) * int(tuple(self.transformer.config.patch_size)[1])

    @property
    def default_working_area(self) -> int:
        """The frame area (pixels) the backbone was built for: 480x832, or for a small transformer an eighth of its
        RoPE table per axis (tiny: 32x32)."""
        cfg = self.transformer.config
        side = int(cfg.rope_max_seq_len) * int(tuple(cfg.patch_size)[1]) * int(self.latent_map.spatial_factor) // 8
        return min(WAN_480P_AREA, side * side)

    @property
    def default_window(self) -> int:
        """The pipeline's clip length: 81 frames."""
        return 81

    def positional_capacity(self) -> PositionalCapacity:
        """The largest window and frame its RoPE table holds."""
        cfg = self.transformer.config
        positions = int(cfg.rope_max_seq_len)
        p_t, p_h, p_w = (int(p) for p in tuple(cfg.patch_size))
        tf, sf = int(self.latent_map.temporal_factor), int(self.latent_map.spatial_factor)
        latent_frames = positions * p_t
        frames = latent_frames if tf == 1 else (latent_frames - 1) * tf + 1
        return PositionalCapacity(max_frames=frames, max_height=positions * p_h * sf, max_width=positions * p_w * sf)

    def save_pretrained(self, directory: str, weights: dict | None = None) -> None:
        """Write a folder ``build`` loads back via ``config.pretrained`` (see ``backbones/export.py``)."""
        save_backbone(self, directory, weights)

    # ----------------------------------------------------------------------------------- building
    @staticmethod
    def build_transformer(config: WanBackboneConfig) -> nn.Module:
        """The transformer from ``config.transformer`` (random init; works on the meta device)."""
        return build_transformer(config)

    @classmethod
    def build(cls, config: WanBackboneConfig, dtype=None) -> "WanBackbone":
        """Load from ``config.pretrained`` (a directory or hub id) or build under ``config.seed``, in ``dtype``."""
        backbone = cls(config, *load_wan_parts(config, dtype))
        load_extras(backbone, config.pretrained)  # learned null text embedding of an exported world backbone
        return backbone if dtype is None else backbone.to(dtype)

    # ------------------------------------------------------------------------- data and condition
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video (B, T, 3, H, W) in [-1, 1] -> latents (B, T_lat, C, h, w); T must be 1 (mod 4) for the VAE."""
        return self.latent_map.encode(video)

    def decode_latents(self, latents: torch.Tensor, num_frames: int | None = None,
                       decode_chunk_size: int | None = None) -> torch.Tensor:
        """Latents (B, T_lat, C, h, w) -> video (B, T, 3, H, W), cropped to ``num_frames`` (``decode_chunk_size`` is
        the other adapter's: Wan's causal VAE decodes one latent frame at a time anyway)."""
        return self.latent_map.decode(latents, num_frames, decode_chunk_size)

    def _tokenize(self, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.config.text_len
        if self.tokenizer is not None:
            out = self.tokenizer(prompts, padding="max_length", max_length=n, truncation=True,
                                 add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
            return out.input_ids.to(device), out.attention_mask.to(device)
        # tiny configs have no tokenizer files: a deterministic byte tokenizer (id 0 = pad, 1 = eos)
        vocab = self.text_encoder.config.vocab_size
        ids = torch.zeros(len(prompts), n, dtype=torch.long)
        for i, p in enumerate(prompts):
            toks = [b % (vocab - 2) + 2 for b in p.encode("utf-8")][: n - 1] + [1]
            ids[i, : len(toks)] = torch.tensor(toks)
        return ids.to(device), (ids > 0).long().to(device)

    def encode_prompt(self, prompt: str | list[str], batch: int, device) -> torch.Tensor:
        """UMT5 states of the cleaned prompt zero-padded beyond its length, (B, text_len, text_dim), as the pipeline."""
        if self.text_encoder is None:
            return self.null_text_embedding.expand(batch, -1, -1)
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        ids, mask = self._tokenize([clean_prompt(p) for p in prompts], device)
        states = self.text_encoder(ids, mask).last_hidden_state
        keep = mask.unsqueeze(-1).to(states.dtype)
        return states * keep

    def encode_condition(self, first_frame: torch.Tensor, prompt: str | list[str] | None = None,
                         generator: torch.Generator | None = None, num_frames: int | None = None
                         ) -> dict[str, torch.Tensor]:
        """The conditioning G needs, precomputable: text and CLIP states, first-frame mask + condition latents.

        Args:
            first_frame (Tensor): (B, 3, H, W) in [-1, 1].
            prompt (str | list[str] | None): the text prompt ("" when None).
            generator: unused (no noise augmentation in Wan); accepted so both backbones share one call.
            num_frames (int): video frames of the clip (required: the condition spans every latent frame).

        Returns:
            {"prompt_embeds": (B, L, text_dim), "negative_prompt_embeds": (B, L, text_dim),
             "condition": (B, T_lat, tf + C, h, w), ["image_embeds": (B, N, image_dim)]}.
        """
        if num_frames is None:
            raise ValueError("Wan's condition spans the whole clip: pass num_frames")
        b, device = first_frame.shape[0], first_frame.device
        tf = self.latent_map.temporal_factor
        t_pad = self.latent_map.padded_frame_count(num_frames)
        # 1. text (and the empty negative prompt used by CFG, as the pipeline's default)
        cond = {"prompt_embeds": self.encode_prompt(prompt or "", b, device),
                "negative_prompt_embeds": self.encode_prompt("", b, device)}
        # 2. CLIP penultimate hidden states
        if self.image_encoder is not None:  # the image processor on the user's image, as the pipeline
            pixels = self.image_processor(images=to_pil(first_frame), return_tensors="pt").pixel_values
            out = self.image_encoder(pixel_values=pixels.to(device, first_frame.dtype), output_hidden_states=True)
            cond["image_embeds"] = out.hidden_states[-2]
        # 3. latents of [first frame, zeros...] and the first-frame mask
        video = torch.cat([first_frame[:, None], first_frame.new_zeros(b, t_pad - 1, *first_frame.shape[1:])], dim=1)
        latents = self.latent_map.encode(video)  # (B, T_lat, C, h, w)
        t_lat, h, w = latents.shape[1], latents.shape[-2], latents.shape[-1]
        mask = torch.zeros(b, t_lat, tf, h, w, dtype=latents.dtype, device=device)
        mask[:, 0] = 1  # latent frame 0 holds the given first frame (repeated tf times in the pipeline)
        cond["condition"] = torch.cat([mask, latents], dim=2)
        return cond

    def null_condition(self, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The unconditional branch of CFG, as the pipeline: the negative prompt, same image and condition latents."""
        out = dict(cond)
        out["prompt_embeds"] = cond["negative_prompt_embeds"]
        return out

    # -------------------------------------------------------------------- objective and schedule
    def training_sample(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> TrainingSample:
        """Flow-matching noising of clean latents (B, T_lat, C, h, w) with shifted uniform sigma."""
        b = latents.shape[0]
        u = uniform(generator, (b,), latents.device)
        shift = self.config.flow_shift
        sigma = (shift * u / (1 + (shift - 1) * u)).to(latents.dtype)
        noise = normal(generator, latents.shape, latents.device, latents.dtype)
        s = sigma.view(b, 1, 1, 1, 1)
        return TrainingSample(model_input=(1 - s) * latents + s * noise, timestep=sigma * 1000,
                              target=noise - latents)

    def make_scheduler(self):
        """A fresh sampler scheduler: the folder's (``scheduler: auto``, a folder that has one), else the configured
        one (``flow_match_euler`` or ``unipc``, with ``flow_shift``)."""
        return make_wan_scheduler(self.config, self.scheduler_config)

    def initial_noise(self, scheduler, shape: tuple[int, ...], generator: torch.Generator | None,
                      device) -> torch.Tensor:
        """The sampler's starting noise (B, T_lat, C, h, w), drawn in the pipeline's layout (B, C, T_lat, h, w) so a
        seed gives the pipeline's noise (flow matching starts from unit noise)."""
        b, t, c, h, w = shape
        return torch.randn((b, c, t, h, w), generator=generator, device=device, dtype=torch.float32).transpose(1, 2)

    def scale_model_input(self, scheduler, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The sampler's model input at timestep ``t``: flow matching denoises ``x_t`` as it is."""
        return x

    def guidance_scale(self, num_latent_frames: int, scale: float | None = None) -> torch.Tensor:
        """A constant CFG scale (default ``config.guidance`` = 5.0), shaped (1, 1, 1, 1, 1)."""
        return torch.full((1, 1, 1, 1, 1), float(self.config.guidance if scale is None else scale))

    # ---------------------------------------------------------------------------- the denoiser
    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor:
        """Plain backbone prediction (B, T_lat, C, h, w); equals ``transformer(cat(x, condition), ...)``."""
        ctx = self.prepare(model_input, timestep, cond)
        prediction, _ = self.trunk(ctx, self.embed(ctx.x_in, ctx))
        return prediction

    def prepare(self, model_input: torch.Tensor, timestep, cond: dict) -> WanContext:
        """Rotary embedding, time/text/image embeddings and the channel-concatenated input (as the transformer)."""
        tr = self.transformer
        x = self.network_input(model_input, cond)
        b, _, f, h, w = x.shape
        p_t, p_h, p_w = tr.config.patch_size
        if not torch.is_tensor(timestep) or timestep.ndim == 0:
            timestep = torch.as_tensor(timestep, device=x.device).reshape(1).expand(b)
        temb, timestep_proj, context, image = tr.condition_embedder(timestep, cond["prompt_embeds"],
                                                                     cond.get("image_embeds"), timestep_seq_len=None)
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        if image is not None:
            context = torch.concat([image, context], dim=1)
        return WanContext(x_in=x, rotary=tr.rope(x), temb=temb, timestep_proj=timestep_proj, context=context,
                          batch=b, grid=(f // p_t, h // p_h, w // p_w))

    def network_input(self, model_input: torch.Tensor, cond: dict) -> torch.Tensor:
        """(B, C_in, F, H, W): the noisy latents beside the condition channels (first-frame mask, its latents)."""
        return torch.cat([model_input, cond["condition"].to(model_input.dtype)], dim=2).transpose(1, 2)

    def tokens_to_grid(self, tokens: torch.Tensor, ctx: WanContext) -> torch.Tensor:
        """Unpatchify per-token values as the output projection's: (B, L, p_t p_h p_w C) -> (B, F, C, H, W)."""
        p_t, p_h, p_w = self.transformer.config.patch_size
        f, hh, ww = ctx.grid
        h = tokens.reshape(ctx.batch, f, hh, ww, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return h.flatten(6, 7).flatten(4, 5).flatten(2, 3).transpose(1, 2)

    def grid_to_tokens(self, grid: torch.Tensor, ctx: WanContext) -> torch.Tensor:
        """Patchify a latent grid into per-token values, the inverse of :meth:`tokens_to_grid`:
        (B, F, C, H, W) -> (B, L, p_t p_h p_w C)."""
        p_t, p_h, p_w = self.transformer.config.patch_size
        f, hh, ww = ctx.grid
        b, c = grid.shape[0], grid.shape[2]
        x = grid.transpose(1, 2).reshape(b, c, f, p_t, hh, p_h, ww, p_w).permute(0, 2, 4, 6, 3, 5, 7, 1)
        return x.reshape(b, f * hh * ww, p_t * p_h * p_w * c)

    def first_frame_latents(self, cond: dict, like: torch.Tensor) -> torch.Tensor:
        """(B, 1, C, h, w): G's first frame (the edited one) as latents, from the condition."""
        return cond["condition"][:, :1, self.latent_map.temporal_factor:].to(like.dtype)

    @property
    def patch_volume(self) -> int:
        """Latent positions per token (p_t p_h p_w)."""
        p_t, p_h, p_w = self.transformer.config.patch_size
        return p_t * p_h * p_w

    def sce_input(self, model_input: torch.Tensor, sce_latents: torch.Tensor, cond: dict,
                  timestep=None) -> torch.Tensor:
        """The SCE's input (B, C_in, F, H, W): noisy latents, an all-ones "frame given" mask, the source latents.

        The source video takes the condition-latent channels and the mask says every frame is given,
        which is exactly what Wan's I2V input format means by a known frame (``timestep`` is unused here).
        """
        b, t, _, h, w = model_input.shape
        ones = model_input.new_ones(b, t, self.latent_map.temporal_factor, h, w)
        return torch.cat([model_input, ones, sce_latents.to(model_input.dtype)], dim=2).transpose(1, 2)

    @property
    def input_layer(self) -> nn.Module:
        """The transformer's input layer (``patch_embedding``), which the SCE copies."""
        return self.transformer.patch_embedding

    def embed(self, x_in: torch.Tensor, ctx: WanContext, input_layer: nn.Module | None = None) -> torch.Tensor:
        """Patch embedding: (B, C_in, F, H, W) -> tokens (B, F'H'W', D)."""
        h = (input_layer or self.transformer.patch_embedding)(x_in)
        return h.flatten(2).transpose(1, 2).contiguous()

    def encoder_blocks(self) -> list[nn.Module]:
        """The transformer blocks, in order (the SCE copies the first N)."""
        return list(self.transformer.blocks)

    def encoder_output_channels(self, index: int) -> list[int]:
        """One output (the tokens) of width D per block."""
        return [self.transformer.config.num_attention_heads * self.transformer.config.attention_head_dim]

    def run_encoder_block(self, index: int, block: nn.Module, ctx: WanContext, h: torch.Tensor,
                          time_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """Run block ``index`` (G's or a copy); ``time_offset`` (B, 6 D) is added to the modulation."""
        proj = ctx.timestep_proj if time_offset is None else ctx.timestep_proj + time_offset.view_as(ctx.timestep_proj)
        h = call_block(block, self.gradient_checkpointing, h, ctx.context, proj, ctx.rotary)
        return h, (h,)

    def trunk(self, ctx: WanContext, h0: torch.Tensor, injections: list | None = None):
        """All of G's blocks, adding ``injections[i][0]`` after block i.

        Returns:
            (prediction (B, T_lat, C, h, w), the penultimate block's output tokens (B, L, D)).
        """
        tr = self.transformer
        injections = injections or []
        # 1. blocks, with injections after the first len(injections) of them
        h, penultimate = h0, None
        for i, block in enumerate(tr.blocks):
            if i == len(tr.blocks) - 1:
                penultimate = h
            h = call_block(block, self.gradient_checkpointing, h, ctx.context, ctx.timestep_proj, ctx.rotary)
            if i < len(injections):
                h = h + injections[i][0].to(h.dtype)
        # 2. output norm, projection, unpatchify (as WanTransformer3DModel.forward)
        shift, scale = (tr.scale_shift_table.to(ctx.temb.device) + ctx.temb.unsqueeze(1)).chunk(2, dim=1)
        h = (tr.norm_out(h.float()) * (1 + scale.to(h.device)) + shift.to(h.device)).type_as(h)
        return self.tokens_to_grid(tr.proj_out(h), ctx), penultimate  # (B, F, C, H, W)

    def final_block(self) -> nn.Module:
        """The last transformer block (the MPD copies it)."""
        return self.transformer.blocks[-1]

    def run_final_block(self, block: nn.Module, ctx: WanContext, penultimate: torch.Tensor,
                        time_offset: torch.Tensor | None = None) -> torch.Tensor:
        """Run (a copy of) the last block on the penultimate block's output tokens."""
        return self.run_encoder_block(-1, block, ctx, penultimate, time_offset)[0]

    def make_mask_head(self, per_pixel: int = 1) -> nn.Module:
        """The MPD's MLP: LayerNorm, Linear, GELU, Linear to tf * per_pixel values per latent pixel
        (tf * per_pixel * p_h * p_w per token)."""
        d = self.encoder_output_channels(0)[0]
        _, p_h, p_w = self.transformer.config.patch_size
        out = self.latent_map.temporal_factor * per_pixel * p_h * p_w
        return nn.Sequential(nn.LayerNorm(d, eps=1e-6, elementwise_affine=False), nn.Linear(d, d),
                             nn.GELU(approximate="tanh"), nn.Linear(d, out))

    def mask_grid(self, head_out: torch.Tensor, ctx: WanContext) -> torch.Tensor:
        """Mask head output (B, L, K p_h p_w) -> (B, T_lat, K, h, w) (K values per latent pixel)."""
        _, p_h, p_w = self.transformer.config.patch_size
        f, hh, ww = ctx.grid
        g = head_out.reshape(ctx.batch, f, hh, ww, -1, p_h, p_w).permute(0, 1, 4, 2, 5, 3, 6)
        return g.flatten(5, 6).flatten(3, 4)

    def feature_grid(self, feature: torch.Tensor, ctx: WanContext) -> torch.Tensor:
        """An SCE feature (B, L, D) -> (B, T_lat, D, h / p_h, w / p_w)."""
        f, hh, ww = ctx.grid
        return feature.reshape(ctx.batch, f, hh, ww, -1).permute(0, 1, 4, 2, 3)

    @property
    def time_cond_dim(self) -> int:
        """Width of the time conditioning a task embedding is added to (6 D modulation)."""
        return 6 * self.encoder_output_channels(0)[0]

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for a clip of ``num_frames`` video frames (after padding, if enabled)."""
        t = self.latent_map.padded_frame_count(num_frames)
        return latent_frame_count(t, self.latent_map.temporal_factor)
