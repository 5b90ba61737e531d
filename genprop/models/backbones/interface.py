"""The small interface the rest of GenProp uses to talk to a backbone (SVD U-Net or Wan DiT).

Both adapters (``svd.py``, ``wan.py``) implement it; nothing else in ``genprop`` imports diffusers'
denoiser classes. Layouts are fixed:

- video: (B, T, 3, H, W) in [-1, 1]; latents: (B, T_lat, C, h, w) (frames first, for both backbones);
- a *condition* is a ``dict[str, Tensor]`` from ``encode_condition`` (precomputable by the shard job);
- the denoiser is split into stages so GenProp can hook in: ``prepare`` (time/text/image embeddings,
  channel-concatenated model input), ``embed`` (the input layer), ``run_encoder_block`` (the blocks
  the SCE copies), ``trunk`` (all of G's blocks with injections, returning the prediction and the
  penultimate block's output), ``run_final_block`` + mask head (the MPD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


class VideoBackbone(Protocol):
    """What GenProp needs from an image-to-video backbone (documentation; adapters are plain nn.Modules)."""

    kind: str  # "svd" | "wan"
    config: Any
    latent_map: nn.Module  # .encode/.decode/.temporal_factor/.spatial_factor/.latent_channels

    # data <-> latents, conditioning (precomputable), objective and schedule
    def encode_video(self, video: torch.Tensor) -> torch.Tensor: ...
    def decode_latents(self, latents: torch.Tensor, num_frames: int | None = None) -> torch.Tensor: ...
    def encode_condition(self, first_frame: torch.Tensor, prompt: str | list[str] | None = None,
                         generator: torch.Generator | None = None) -> dict[str, torch.Tensor]: ...
    def null_condition(self, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...
    def training_sample(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> TrainingSample: ...
    def make_scheduler(self): ...
    def guidance_scale(self, num_latent_frames: int, scale: float | None = None) -> torch.Tensor: ...

    # the denoiser, in stages
    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> torch.Tensor: ...
    def prepare(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict) -> Any: ...
    def sce_input(self, model_input: torch.Tensor, sce_latents: torch.Tensor, cond: dict) -> torch.Tensor: ...
    def embed(self, x_in: torch.Tensor, ctx: Any, input_layer: nn.Module | None = None) -> torch.Tensor: ...
    def encoder_blocks(self) -> list[nn.Module]: ...
    def encoder_output_channels(self, index: int) -> list[int]: ...
    def run_encoder_block(self, index: int, block: nn.Module, ctx: Any, h: torch.Tensor,
                          time_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]: ...
    def trunk(self, ctx: Any, h0: torch.Tensor, injections: list | None = None) -> tuple[torch.Tensor, Any]: ...
    def final_block(self) -> nn.Module: ...
    def run_final_block(self, block: nn.Module, ctx: Any, penultimate: Any,
                        time_offset: torch.Tensor | None = None) -> torch.Tensor: ...
    def make_mask_head(self) -> nn.Module: ...
    def mask_grid(self, head_out: torch.Tensor, ctx: Any) -> torch.Tensor: ...
    def feature_grid(self, feature: torch.Tensor, ctx: Any) -> torch.Tensor: ...


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
