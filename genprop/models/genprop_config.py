"""GenPropConfig: the one configuration shape of a GenProp model (saved as JSON beside every checkpoint)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from genprop.models.anchoring.config import AnchoringConfig
from genprop.models.backbones import (BackboneConfig, SVDBackboneConfig, WanBackboneConfig, backbone_config_from_dict,
                                      backbone_kind)


def default_sce_blocks(kind: str, num_blocks: int) -> int:
    """The SCE's depth when a config leaves it unset: a quarter of a Wan transformer's blocks; SVD 2 (of its U-Net's
    down and mid blocks).

    Args:
        kind (str): "wan" or "svd". num_blocks (int): the loaded backbone's encoder blocks (``encoder_blocks()``).
    """
    return max(1, num_blocks // 4) if kind == "wan" else min(2, num_blocks)


@dataclass(frozen=True)
class GenPropConfig:
    """Configuration of a GenProp model.

    The same shape in a checkpoint's ``genprop_config.json`` and in the ``model:`` section of every run config
    (Ray Train's ``train.model``, the procedural runs' ``model``). A run config leaves ``backbone`` out: the run
    sets it to the backbone its data was encoded with (``with_backbone``).

    Args:
        backbone (SVDBackboneConfig | WanBackboneConfig | None): the frozen I2V backbone; None until a run sets it.
        sce_blocks (int | None, default None): N blocks copied into the SCE; None = ``default_sce_blocks`` of the
            loaded backbone (a pipeline folder's own block count, whatever its config dict says).
        task_dim (int, default 256): task embedding width.
        num_tasks (int, default 4): task ids (``genprop.tasks.Task``).
        fp32_sce_under_autocast (bool, default True): run the SCE (both passes) in fp32 when autocast is on,
            so L_grad's finite difference is not lost in bf16 rounding.
        seed (int, default 0): seed for the freshly initialised layers (injection MLPs, MPD head, tasks).
        mask_scale (int | None, default None): the MPD's mask pixels per latent pixel and side; None = the latent
            map's spatial factor (the video's own resolution), 1 = the latent grid.
        anchoring (AnchoringConfig | None, default None): the procedural world's source/flow anchoring
            (``genprop.models.anchoring``); None is the paper's model.
    """

    backbone: BackboneConfig | None = None
    sce_blocks: int | None = None
    task_dim: int = 256
    num_tasks: int = 4
    fp32_sce_under_autocast: bool = True
    seed: int = 0
    mask_scale: int | None = None
    anchoring: AnchoringConfig | None = None

    # fields of earlier config shapes -> where they live now (a config in the old shape fails naming them)
    MOVED: ClassVar[dict[str, str]] = {"source_anchor": "anchoring (a section: anchoring: {flow: ...})",
                                       "flow_anchor": "anchoring.flow"}

    def __post_init__(self):
        if self.backbone is not None and not isinstance(self.backbone, (SVDBackboneConfig, WanBackboneConfig)):
            raise ValueError("backbone: set by the run from its data's backbone (shards or backbone directory); "
                             "leave it out of a run config's model section")

    @classmethod
    def tiny(cls, backbone: str = "wan", **backbone_kwargs) -> "GenPropConfig":
        """A tiny CPU configuration; ``backbone_kwargs`` go to the backbone config's ``tiny()``."""
        if backbone == "svd":
            cfg = SVDBackboneConfig.tiny(**backbone_kwargs)
        elif backbone == "wan":
            cfg = WanBackboneConfig.tiny(**backbone_kwargs)
        else:
            raise ValueError(f"unknown backbone {backbone!r}; expected 'svd' or 'wan'")
        return cls(backbone=cfg, sce_blocks=1, task_dim=16)

    def with_backbone(self, backbone: BackboneConfig) -> "GenPropConfig":
        """This config over ``backbone`` (what a run does with its ``model:`` section)."""
        return dataclasses.replace(self, backbone=backbone)

    @property
    def extension(self) -> str | None:
        """The extension of the paper's model this config names ("anchoring"), or None for the paper's model."""
        return "anchoring" if self.anchoring is not None else None

    @property
    def backbone_kind(self) -> str:
        return backbone_kind(self.required_backbone)

    @property
    def required_backbone(self) -> BackboneConfig:
        """``backbone``, which must be set by now."""
        if self.backbone is None:
            raise ValueError("GenPropConfig.backbone is not set (a run config's model section gets the run's "
                             "backbone through with_backbone)")
        return self.backbone

    def num_sce_blocks(self, backbone) -> int:
        """N for a model over ``backbone`` (the built adapter)."""
        if self.sce_blocks is not None:
            return self.sce_blocks
        return default_sce_blocks(backbone.kind, len(backbone.encoder_blocks()))

    def to_dict(self) -> dict:
        """The checkpoint JSON: ``backbone`` is the kind, ``backbone_config`` its fields."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("backbone", "anchoring")}
        d["anchoring"] = dataclasses.asdict(self.anchoring) if self.anchoring is not None else None
        return {"backbone": self.backbone_kind, "backbone_config": dataclasses.asdict(self.required_backbone), **d}

    @classmethod
    def from_dict(cls, d: dict) -> "GenPropConfig":
        """Read :meth:`to_dict`'s JSON.

        Raises:
            ValueError: a field of an earlier shape (named with where it lives now) or an unknown one.
        """
        d = dict(d)
        moved = [f"{k} -> {cls.MOVED[k]}" for k in d if k in cls.MOVED]
        if moved:
            raise ValueError("fields of an earlier config shape: " + "; ".join(moved))
        kind = d.pop("backbone")
        bb = backbone_config_from_dict(kind, d.pop("backbone_config"))
        anchoring = d.pop("anchoring", None)
        return cls(backbone=bb, anchoring=AnchoringConfig(**anchoring) if anchoring is not None else None, **d)
