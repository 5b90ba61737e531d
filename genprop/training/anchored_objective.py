"""The anchoring extension's objective: the paper's GenProp objective plus L_gate on the anchored model's gate.

Used by the procedural configs (``model.anchoring``); the paper's objective (``objectives.GenPropObjective``) is
unchanged and runs first, with the same random draws.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genprop.models.anchoring.config import AnchoringConfig
from genprop.models.anchoring.flow import FLOW_ANCHOR_KEY
from genprop.models.anchoring.loss import flow_gate_target, gate_term
from genprop.training.objectives import GenPropObjective, check_finite, unwrap


class AnchoredObjective:
    """``L = L_GenProp + gate_weight * L_gate``.

    Args:
        paper (GenPropObjective): the paper's objective (loss weights, condition drop).
        anchoring (AnchoringConfig): the gate's loss weight (and whether it has the flow channel).
    """

    def __init__(self, paper: GenPropObjective, anchoring: AnchoringConfig):
        self.paper, self.anchoring = paper, anchoring

    def __call__(self, model: nn.Module, batch: dict, step: int,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The paper's terms plus ``gate`` (L_gate), with the total including it."""
        done = self.paper.compute(model, batch, step, generator)
        flow_target = None
        if self.anchoring.flow:  # (the gate has the flow channel, the condition the flow anchor)
            bb, target = unwrap(model).backbone, batch["target_latents"]
            flow_target = flow_gate_target(target, bb.anchor(done.cond, target), batch["sce_latents"],
                                           done.cond[FLOW_ANCHOR_KEY])
        l_gate = gate_term(done.output.gate, done.latent_mask, flow_target)
        terms = {**done.terms, "loss": done.terms["loss"] + self.anchoring.gate_weight * l_gate, "gate": l_gate}
        check_finite(terms, step, batch.get("keys", []))
        return terms
