"""Build or load the GenProp model a config names: the paper's ``GenPropModel`` or an extension of it.

The extension's code is imported only when a config asks for it, so the paper's path (every real-weight
user's) never loads it.
"""

from __future__ import annotations

import torch.nn as nn

from genprop.models.backbones.interface import VideoBackbone
from genprop.models.genprop_config import GenPropConfig
from genprop.models.genprop_model import GenPropModel, read_config


def model_class(config: GenPropConfig) -> type[GenPropModel]:
    """``GenPropModel``, or ``AnchoredGenPropModel`` for a config with an ``anchoring`` section."""
    if config.extension is None:
        return GenPropModel
    from genprop.models.anchoring.model import AnchoredGenPropModel

    return AnchoredGenPropModel


def build_genprop(config: GenPropConfig, backbone: VideoBackbone | None = None) -> GenPropModel:
    """A freshly initialised model of ``config`` (every injection at zero: it equals its backbone).

    Args:
        config (GenPropConfig): the model (its ``backbone`` set).
        backbone (VideoBackbone | None): an already-built backbone to reuse; None builds the config's.
    """
    return model_class(config)(config, backbone=backbone)


def load_genprop(directory: str, backbone: nn.Module | None = None,
                 expected_backbone: str | None = None) -> GenPropModel:
    """The checkpoint in ``directory`` as the model its ``genprop_config.json`` names.

    Args:
        directory (str): a local checkpoint directory (``GenPropModel.save_pretrained``'s layout).
        backbone, expected_backbone: as ``GenPropModel.from_pretrained``.

    Raises:
        CheckpointError: as ``GenPropModel.from_pretrained``.
    """
    return model_class(read_config(directory)).from_pretrained(directory, backbone=backbone,
                                                               expected_backbone=expected_backbone)
