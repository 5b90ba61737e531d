"""The small interface the rest of GenProp uses to talk to a backbone (SVD U-Net or Wan DiT).

Both adapters (``svd.py``, ``wan.py``) implement it; nothing else in ``genprop`` imports diffusers'
denoiser classes. Layouts are fixed:

- video: (B, T, 3, H, W) in [-1, 1]; latents: (B, T_lat, C, h, w) (frames first, for both backbones);
- a *condition* is a ``dict[str, Tensor]`` from ``encode_condition`` (precomputable by the shard job);
- :class:`VideoBackbone` lists every member callers use, :class:`LatentMap` a latent map's;
- the denoiser is split into stages so GenProp can hook in: ``prepare`` (time/text/image embeddings,
  channel-concatenated model input), ``embed`` (the input layer), ``run_encoder_block`` (the blocks
  the SCE copies), ``trunk`` (all of G's blocks with injections, returning the prediction and the
  penultimate block's output), ``run_final_block`` + mask head (the MPD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn


@dataclass
class TrainingSample:
    """One noised training input in the backbone's own parameterisation.

    Attributes:
        model_input (Tensor): (B, T_lat, C, h, w) what the denoiser sees (EDM: c_in-scaled; flow: x_t).
        timestep (Tensor): (B,) the timestep in the denoiser's units.
        target (Tensor): (B, T_lat, C, h, w) the regression target of the raw denoiser output.
    """

    model_input: torch.Tensor
    timestep: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class PositionalCapacity:
    """The largest window and working frame a backbone's positional tables hold (None: no table, no limit).

    Args:
        max_frames (int | None): video frames of one window (after Wan's VAE padding to 1 mod 4).
        max_height (int | None), max_width (int | None): working-frame sides in pixels.
    """

    max_frames: int | None = None
    max_height: int | None = None
    max_width: int | None = None


class LatentMap(Protocol):
    """Video pixels <-> the latent grid (``latent_maps.py``: pixel-unshuffle, SVD's VAE, Wan's VAE)."""

    temporal_factor: int  # video frames per latent frame (the first latent frame holds one)
    spatial_factor: int  # H / h
    latent_channels: int

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def decode(self, latents: torch.Tensor, num_frames: int | None = None,
               decode_chunk_size: int | None = None) -> torch.Tensor: ...  # frames per decoder call (SVD's VAE)
    def padded_frame_count(self, num_frames: int) -> int: ...
    def enable_tiling(self) -> bool: ...


@runtime_checkable
class VideoBackbone(Protocol):
    """Everything the rest of genprop uses of an image-to-video backbone (``SVDBackbone``, ``WanBackbone``).

    Adapters are plain ``nn.Module``s that implement every member (a test checks both against this class);
    nothing outside ``genprop/models/backbones`` reaches past it into diffusers' modules.
    """

    kind: str  # "svd" | "wan"
    feature_layout: str  # "grid" (SVD: per-frame feature maps) | "tokens" (Wan: one token sequence)
    config: Any
    latent_map: LatentMap
    gradient_checkpointing: bool  # recompute block activations in backward (set by the trainer)

    # data <-> latents, conditioning (precomputable), objective and schedule
    def encode_video(self, video: torch.Tensor) -> torch.Tensor: ...
    def decode_latents(self, latents: torch.Tensor, num_frames: int | None = None,
                       decode_chunk_size: int | None = None) -> torch.Tensor: ...
    def encode_condition(self, first_frame: torch.Tensor, prompt: str | list[str] | None = None,
                         generator: torch.Generator | None = None,
                         num_frames: int | None = None) -> dict[str, torch.Tensor]: ...
    def null_condition(self, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...
    def training_sample(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> TrainingSample: ...
    def make_scheduler(self): ...
    def initial_noise(self, scheduler, shape: tuple[int, ...], generator: torch.Generator | None,
                      device) -> torch.Tensor: ...
    def scale_model_input(self, scheduler, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...
    def guidance_scale(self, num_latent_frames: int, scale: float | None = None) -> torch.Tensor: ...
    def latent_frames(self, num_frames: int) -> int: ...

    # the denoiser, in stages
    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor: ...
    def prepare(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> Any: ...
    def sce_input(self, model_input: torch.Tensor, sce_latents: torch.Tensor, cond: dict,
                  timestep=None) -> torch.Tensor: ...
    def embed(self, x_in: torch.Tensor, ctx: Any, input_layer: nn.Module | None = None) -> torch.Tensor: ...
    def encoder_blocks(self) -> list[nn.Module]: ...
    def encoder_output_channels(self, index: int) -> list[int]: ...
    def run_encoder_block(self, index: int, block: nn.Module, ctx: Any, h: torch.Tensor,
                          time_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]: ...
    def trunk(self, ctx: Any, h0: torch.Tensor, injections: list | None = None) -> tuple[torch.Tensor, Any]: ...
    def final_block(self) -> nn.Module: ...
    def run_final_block(self, block: nn.Module, ctx: Any, penultimate: Any,
                        time_offset: torch.Tensor | None = None) -> torch.Tensor: ...
    def make_mask_head(self, per_pixel: int = 1) -> nn.Module: ...
    def mask_grid(self, head_out: torch.Tensor, ctx: Any) -> torch.Tensor: ...
    def feature_grid(self, feature: torch.Tensor, ctx: Any) -> torch.Tensor: ...

    @property
    def input_layer(self) -> nn.Module: ...  # what the SCE copies as its own input layer
    @property
    def time_cond_dim(self) -> int: ...  # width of the time conditioning a task embedding is added to

    # components and geometry (training, propagation, memory planning)
    @property
    def denoiser(self) -> nn.Module: ...  # the diffusers denoiser (what the ``i2v`` objective trains)
    def denoiser_blocks(self) -> list[nn.Module]: ...
    def condition_encoders(self) -> list[nn.Module]: ...
    @property
    def spatial_alignment(self) -> int: ...
    @property
    def default_working_area(self) -> int: ...
    @property
    def default_window(self) -> int: ...
    def positional_capacity(self) -> PositionalCapacity: ...
    def save_pretrained(self, directory: str, weights: dict | None = None) -> None: ...


def seeded(seed: int):
    """Context manager: build modules under a fixed seed without disturbing the caller's RNG."""
    rng = torch.random.fork_rng(devices=[])

    class _Ctx:
        def __enter__(self):
            rng.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc):
            return rng.__exit__(*exc)

    return _Ctx()


def call_block(block, enabled: bool, *args, **kwargs):
    """Call ``block(*args, **kwargs)``, recomputing its activations in the backward pass when ``enabled``.

    Gradient checkpointing trades one extra forward per block for not storing its activations; it
    applies only while autograd records (never at inference).
    """
    if enabled and torch.is_grad_enabled():
        from torch.utils.checkpoint import checkpoint

        return checkpoint(block, *args, use_reentrant=False, **kwargs)
    return block(*args, **kwargs)


def freeze(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with every parameter frozen; returns it."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
