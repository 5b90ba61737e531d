"""Mask Prediction Decoder (MPD): a copy of the backbone's final block plus one MLP.

Fed from the output of G's penultimate block (which carries the SCE's injections), it predicts the mask of
every *video* frame at ``scale`` mask pixels per latent pixel and side (the latent map's spatial factor: the
video's own resolution). The MLP emits ``temporal_factor * scale**2`` values per latent pixel, which the decoder
rearranges (pixel shuffle) and unfolds in time: latent frame 0 -> video frame 0, latent frame k >= 1 -> video
frames 4k-3 .. 4k (Wan's VAE: 4 video frames per latent frame, the first holding one); a padded clip is cropped
back to its ``num_frames``. The paper restores the temporal dimension in the MLP and is silent on the spatial one;
restoring it too lets a small object's mask cross 0.5 (docs/design-decisions.md, "Mask Prediction Decoder").
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from genprop.models.unit_outputs import own


def unfold_time(grid: torch.Tensor) -> torch.Tensor:
    """(B, T_lat, tf, h, w) -> (B, 1 + tf (T_lat - 1), h, w): the first latent frame holds one video frame."""
    if grid.shape[2] == 1:
        return grid[:, :, 0]
    return torch.cat([grid[:, :1, 0], grid[:, 1:].flatten(1, 2)], dim=1)


class MaskPredictionDecoder(nn.Module):
    """The MPD. Build with :meth:`from_backbone`.

    Args:
        block (nn.Module): copy of the backbone's final block.
        head (nn.Module): the MLP (from ``backbone.make_mask_head``), ``temporal_factor * scale**2`` outputs per
            latent pixel.
        task_proj (nn.Module): task embedding -> time conditioning offset of the copied block.
        scale (int, default 1): mask pixels per latent pixel and side.
    """

    def __init__(self, block: nn.Module, head: nn.Module, task_proj: nn.Module, scale: int = 1):
        super().__init__()
        self.block = block
        self.head = head
        self.task_proj = task_proj
        self.scale = int(scale)

    @classmethod
    def from_backbone(cls, backbone, task_dim: int, scale: int = 1) -> "MaskPredictionDecoder":
        """Copy ``backbone``'s final block (weights included) and add a fresh MLP head.

        Args:
            backbone (SVDBackbone | WanBackbone): the frozen backbone adapter.
            task_dim (int): width of the task embedding.
            scale (int, default 1): mask pixels per latent pixel and side (a divisor of the latent map's spatial
                factor; the factor itself is the video's resolution).
        """
        sf = int(backbone.latent_map.spatial_factor)
        if scale < 1 or sf % scale:
            raise ValueError(f"MPD scale {scale} must divide the latent map's spatial factor {sf}")
        mpd = cls(copy.deepcopy(backbone.final_block()), backbone.make_mask_head(scale * scale),
                  nn.Linear(task_dim, backbone.time_cond_dim), scale)
        for p in mpd.parameters():
            p.requires_grad_(True)
        return mpd.train()

    def forward(self, backbone, ctx, penultimate, task_emb: torch.Tensor,
                num_frames: int | None = None) -> torch.Tensor:
        """Predict the edited region.

        Args:
            backbone: the adapter (runs the copied block, shapes the head's output).
            ctx: the backbone context.
            penultimate: G's penultimate-block output from ``backbone.trunk``.
            task_emb (Tensor): (B, task_dim).
            num_frames (int | None): crop to this many video frames (a padded clip).

        Returns:
            (B, T_video, h s, w s) mask values (regressed with MSE against the instance mask at that resolution).
        """
        # 1. the copied final block, with the task in its time conditioning
        h = backbone.run_final_block(self.block, ctx, penultimate, self.task_proj(task_emb))
        # 2. MLP -> temporal_factor * s^2 values per latent pixel -> (tf, h s, w s) per latent frame -> video frames
        grid = backbone.mask_grid(self.head(h), ctx)  # (B, T_lat, tf s^2, h, w)
        if self.scale > 1:
            grid = F.pixel_shuffle(grid.flatten(0, 1), self.scale).unflatten(0, grid.shape[:2])
        video = unfold_time(grid)
        return own(video if num_frames is None else video[:, :num_frames])
