"""Backbone adapters (SVD U-Net, Wan DiT), their latent maps, and the one factory that picks between them."""

from __future__ import annotations

from genprop.models.backbones.interface import TrainingSample, VideoBackbone
from genprop.models.backbones.latent_maps import PixelUnshuffleLatents, SVDVaeLatents, WanVaeLatents
from genprop.models.backbones.svd import SVDBackbone
from genprop.models.backbones.svd_config import SVDBackboneConfig
from genprop.models.backbones.wan import WanBackbone
from genprop.models.backbones.wan_config import WanBackboneConfig

BackboneConfig = SVDBackboneConfig | WanBackboneConfig


def backbone_kind(config: BackboneConfig) -> str:
    """"svd" or "wan" for a backbone config."""
    if isinstance(config, SVDBackboneConfig):
        return "svd"
    if isinstance(config, WanBackboneConfig):
        return "wan"
    raise TypeError(f"not a backbone config: {type(config).__name__}")


def backbone_config_from_dict(kind: str, values: dict) -> BackboneConfig:
    """Rebuild a backbone config from its JSON form (``kind`` is "svd" or "wan")."""
    if kind == "svd":
        return SVDBackboneConfig(**values)
    if kind == "wan":
        return WanBackboneConfig(**values)
    raise ValueError(f"unknown backbone {kind!r}; expected 'svd' or 'wan'")


def build_backbone(config: BackboneConfig, dtype=None) -> SVDBackbone | WanBackbone:
    """Load or build the backbone a config describes (pretrained directory / hub id, or tiny/random under seed).

    A Wan config with ``first_frame_anchor`` or ``sigma_data`` (the procedural backbone) builds a
    ``PreconditionedWanBackbone``.

    Args:
        config (BackboneConfig): the backbone.
        dtype (torch.dtype | None, default None): load the weights in this dtype (``torch_dtype`` of
            ``from_pretrained``, so a 14B backbone is never whole in fp32 in memory); a built one is cast after
            building. None: as stored (fp32 for a built one).
    """
    if backbone_kind(config) == "svd":
        return SVDBackbone.build(config, dtype)
    if config.first_frame_anchor or config.sigma_data is not None:
        from genprop.models.backbones.wan_preconditioned import PreconditionedWanBackbone

        return PreconditionedWanBackbone.build(config, dtype)
    return WanBackbone.build(config, dtype)


__all__ = ["BackboneConfig", "PixelUnshuffleLatents", "SVDBackbone", "SVDBackboneConfig", "SVDVaeLatents",
           "TrainingSample", "VideoBackbone", "WanBackbone", "WanBackboneConfig", "WanVaeLatents", "backbone_kind",
           "backbone_config_from_dict", "build_backbone"]
