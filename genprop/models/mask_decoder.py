"""Mask Prediction Decoder (MPD): a copy of the backbone's final block plus one MLP.

Fed from the output of G's penultimate block (which carries the SCE's injections), it predicts one
mask value per latent-grid pixel for every *video* frame. When the VAE compresses time (Wan: 4 video
frames per latent frame, the first latent frame holding one), the MLP emits ``temporal_factor``
values per latent pixel and the decoder unfolds them: latent frame 0 -> video frame 0, latent frame
k >= 1 -> video frames 4k-3 .. 4k; a padded clip is cropped back to its ``num_frames``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def unfold_time(grid: torch.Tensor) -> torch.Tensor:
    """(B, T_lat, tf, h, w) -> (B, 1 + tf (T_lat - 1), h, w): the first latent frame holds one video frame."""
    if grid.shape[2] == 1:
        return grid[:, :, 0]
    return torch.cat([grid[:, :1, 0], grid[:, 1:].flatten(1, 2)], dim=1)


class MaskPredictionDecoder(nn.Module):
    """The MPD. Build with :meth:`from_backbone`.

    Args:
        block (nn.Module): copy of the backbone's final block.
        head (nn.Module): the MLP (from ``backbone.make_mask_head``).
        task_proj (nn.Module): task embedding -> time conditioning offset of the copied block.
    """

    def __init__(self, block: nn.Module, head: nn.Module, task_proj: nn.Module):
        super().__init__()
        self.block = block
        self.head = head
        self.task_proj = task_proj

    @classmethod
    def from_backbone(cls, backbone, task_dim: int) -> "MaskPredictionDecoder":
        """Copy ``backbone``'s final block (weights included) and add a fresh MLP head.

        Args:
            backbone (SVDBackbone | WanBackbone): the frozen backbone adapter.
            task_dim (int): width of the task embedding.
        """
        mpd = cls(copy.deepcopy(backbone.final_block()), backbone.make_mask_head(),
                  nn.Linear(task_dim, backbone.time_cond_dim))
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
            (B, T_video, h, w) mask values (regressed with MSE against the instance mask).
        """
        # 1. the copied final block, with the task in its time conditioning
        h = backbone.run_final_block(self.block, ctx, penultimate, self.task_proj(task_emb))
        # 2. MLP -> temporal_factor values per latent pixel -> video frames
        video = unfold_time(backbone.mask_grid(self.head(h), ctx))
        return video if num_frames is None else video[:, :num_frames]
