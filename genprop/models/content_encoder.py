"""Selective Content Encoder (SCE): a ControlNet-like copy of the backbone's input layer and first N blocks.

The SCE sees the source video's latents where G sees its condition latents (see each adapter's
``sce_input``), fuses in G's hidden state after G's input layer (a zero-initialised 1x1 conv /
linear, added to its own embedded input: the paper's bidirectional exchange), adds the task
embedding to its time conditioning (zero-initialised projection), and after each copied block maps
every block output through a zero-initialised MLP; those injections are added to the matching
outputs of G's blocks. At initialisation every injection is exactly 0, so G is unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from genprop.models.unit_outputs import own
from genprop.models.zero_init import zero_module


class InjectionMLP(nn.Module):
    """Two-layer MLP whose last layer starts at zero (1x1 convs on grids, linears on tokens).

    Args:
        channels (int): feature width in and out.
        layout (str): "grid" ((N, C, h, w) features) or "tokens" ((B, L, D) features).
    """

    def __init__(self, channels: int, layout: str):
        super().__init__()
        if layout == "grid":
            first, last = nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, channels, 1)
        else:
            first, last = nn.Linear(channels, channels), nn.Linear(channels, channels)
        # only the last layer is zeroed: zeroing both would leave the first without a gradient forever
        self.net = nn.Sequential(first, nn.SiLU(), zero_module(last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelectiveContentEncoder(nn.Module):
    """The SCE. Build with :meth:`from_backbone`; it holds no reference to the (frozen) backbone.

    Args:
        input_layer (nn.Module): copy of the backbone's input layer.
        fusion (nn.Module): zero-initialised map of G's embedded input into the SCE's.
        blocks (nn.ModuleList): copies of the backbone's first N blocks.
        injections (nn.ModuleList): per block, a ModuleList of ``InjectionMLP``, one per block output.
        task_proj (nn.Module): zero-initialised task embedding -> time conditioning offset.
    """

    def __init__(self, input_layer: nn.Module, fusion: nn.Module, blocks: nn.ModuleList,
                 injections: nn.ModuleList, task_proj: nn.Module):
        super().__init__()
        self.input_layer = input_layer
        self.fusion = fusion
        self.blocks = blocks
        self.injections = injections
        self.task_proj = task_proj

    @classmethod
    def from_backbone(cls, backbone, num_blocks: int, task_dim: int) -> "SelectiveContentEncoder":
        """Copy the input layer and the first ``num_blocks`` blocks of ``backbone``, weights included.

        Args:
            backbone (SVDBackbone | WanBackbone): the frozen backbone adapter.
            num_blocks (int): N, the number of blocks copied (1 .. len(backbone.encoder_blocks())).
            task_dim (int): width of the task embedding.
        """
        blocks = backbone.encoder_blocks()
        if not 1 <= num_blocks <= len(blocks):
            raise ValueError(f"num_blocks must be in 1..{len(blocks)} for this {backbone.kind} backbone, "
                             f"got {num_blocks}")
        layout = backbone.feature_layout
        input_layer = copy.deepcopy(backbone.input_layer)
        width = backbone.encoder_output_channels(0)[0] if layout == "tokens" else input_layer.out_channels
        fusion = zero_module(nn.Conv2d(width, width, 1) if layout == "grid" else nn.Linear(width, width))
        copies = nn.ModuleList(copy.deepcopy(b) for b in blocks[:num_blocks])
        injections = nn.ModuleList(
            nn.ModuleList(InjectionMLP(c, layout) for c in backbone.encoder_output_channels(i))
            for i in range(num_blocks))
        task_proj = zero_module(nn.Linear(task_dim, backbone.time_cond_dim))
        sce = cls(input_layer, fusion, copies, injections, task_proj)
        for p in sce.parameters():
            p.requires_grad_(True)
        return sce.train()

    def forward(self, backbone, x_sce: torch.Tensor, ctx, g_hidden: torch.Tensor,
                task_emb: torch.Tensor, return_hidden: bool = False):
        """Encode the source video into per-block injections.

        Args:
            backbone: the adapter whose ``embed``/``run_encoder_block`` run the copies.
            x_sce (Tensor): the SCE input from ``backbone.sce_input``.
            ctx: the backbone context from ``backbone.prepare`` (shared time/text/image embeddings).
            g_hidden (Tensor): G's hidden state after its input layer (same grid as the SCE's).
            task_emb (Tensor): (B, task_dim).
            return_hidden (bool, default False): also return the last copied block's hidden state (GenProp's source
                anchor gate reads it).

        Returns:
            list over blocks of tuples (one tensor per block output) to add to G's block outputs; with
            ``return_hidden``, ``(that list, hidden)``.
        """
        # 1. own input layer + bidirectional fusion of G's embedded input
        h = backbone.embed(x_sce, ctx, input_layer=self.input_layer) + self.fusion(g_hidden)
        # 2. task embedding -> offset of the time conditioning
        offset = self.task_proj(task_emb)
        # 3. copied blocks, each followed by its zero-initialised injections
        out = []
        for i, (block, mlps) in enumerate(zip(self.blocks, self.injections)):
            h, outputs = backbone.run_encoder_block(i, block, ctx, h, offset)
            out.append(tuple(own(mlp(o)) for mlp, o in zip(mlps, outputs)))
        return (out, own(h)) if return_hidden else out
