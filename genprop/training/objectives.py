"""The two training objectives, sharing one loop: ``genprop`` (Eq. 3, Sec. 3.3) and ``i2v``.

A batch is a dict (what the shard reader collates):

- ``target_latents`` (B, T_lat, C, h, w): the video whose first frame G receives (always the target);
- ``cond`` (dict of (B, ...) tensors): G's conditioning, precomputed from G's first frame and prompt;
- ``sce_latents`` (B, T_lat, C, h, w): what the SCE sees (``genprop`` only);
- ``mask`` (B, T, H, W) in [0, 1]: the edited region at video resolution (``genprop`` only);
- ``task_id`` (B,) long: 0 default, 1 copy-and-paste, 2 mask-and-fill, 3 colour fill (``genprop`` only);
- ``keys`` (list[str]): the samples' shard keys, named when a loss is not finite.

The objective is given the module to call, which may be wrapped (DDP/FSDP) so gradients are
synchronised; it reaches the plain module through ``.module`` for everything that is not the forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from genprop.errors import GenPropError
from genprop.losses import RegionLossConfig, drop_task_ids, loss_masks, region_aware_loss
from genprop.models.genprop_model import GenPropOutput
from genprop.sample_draws import uniform


class NonFiniteLossError(GenPropError):
    """A loss that is NaN or infinite: the run stops and names the step and the samples."""

    def __init__(self, step: int, keys: list[str], terms: dict[str, float]):
        self.step, self.keys, self.terms = step, list(keys), terms
        super().__init__(f"non-finite loss at step {step} on samples {self.keys[:8]}: {terms}")

    def __reduce__(self):  # picklable across Ray's process boundary despite the custom __init__
        return (NonFiniteLossError, (self.step, self.keys, self.terms))

    def to_json(self) -> dict:
        """The fields, for a marker file (see ``pipelines.train``)."""
        return {"step": self.step, "keys": self.keys, "terms": self.terms}


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP/FSDP wrapper (or the module itself)."""
    return getattr(module, "module", module)


def drop_condition(backbone, cond: dict[str, torch.Tensor], prob: float,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Replace each sample's condition by the backbone's null condition with probability ``prob``.

    This is what makes classifier-free guidance work at inference: the sampler's unconditional pass
    uses ``backbone.null_condition``, so training shows the model exactly that input.

    Args:
        backbone: the adapter (``null_condition``).
        cond (dict[str, Tensor]): batched conditioning, batch first.
        prob (float): drop probability per sample.
        generator (torch.Generator | None): for the draws.
    """
    if prob <= 0:
        return cond
    first = next(iter(cond.values()))
    drop = uniform(generator, (first.shape[0],), first.device) < prob
    null = backbone.null_condition(cond)
    out = dict(cond)
    for k, v in null.items():
        d = drop.view(-1, *([1] * (v.dim() - 1)))
        out[k] = torch.where(d, v, cond[k])
    return out


def check_finite(terms: dict[str, torch.Tensor], step: int, keys: list[str]) -> None:
    """Raise :class:`NonFiniteLossError` when the total loss is NaN or infinite."""
    if not torch.isfinite(terms["loss"]):
        raise NonFiniteLossError(step, keys, {k: float(v.detach()) for k, v in terms.items()})


@dataclass
class ObjectiveStep:
    """One evaluation of the GenProp objective: the loss terms and what made them (for an objective wrapping it).

    Attributes:
        terms (dict[str, Tensor]): the region-aware loss's total and terms (not yet checked for being finite).
        output (GenPropOutput): the model's forward output.
        cond (dict[str, Tensor]): G's conditioning as the model saw it (after the condition drop).
        latent_mask (Tensor): (B, T_lat, 1, h, w) the edit mask at latent resolution.
    """

    terms: dict
    output: GenPropOutput
    cond: dict
    latent_mask: torch.Tensor


class GenPropObjective:
    """Eq. 3 with the region-aware loss: SCE input -> E, G's frame -> G, loss against the target.

    Args:
        loss (RegionLossConfig): the loss weights, δ, task drop probability and ``grad_every``.
        cond_drop_prob (float): probability of training with G's null condition (for CFG).
    """

    def __init__(self, loss: RegionLossConfig, cond_drop_prob: float):
        self.loss, self.cond_drop_prob = loss, cond_drop_prob

    @staticmethod
    def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
        """SCE, MPD and task embeddings (and an extension's parameters), keyed as in ``GenPropModel.state_dict``."""
        return {n: p for n, p in model.named_parameters() if not n.startswith("backbone.")}

    def __call__(self, model: nn.Module, batch: dict, step: int,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        terms = self.compute(model, batch, step, generator).terms
        check_finite(terms, step, batch.get("keys", []))
        return terms

    def compute(self, model: nn.Module, batch: dict, step: int,
                generator: torch.Generator | None = None) -> ObjectiveStep:
        """The loss terms of ``batch`` at training ``step`` and what made them (arguments as ``__call__``)."""
        core = unwrap(model)
        bb = core.backbone
        target = batch["target_latents"]
        # 1. noise the target in the backbone's parameterisation
        sample = bb.training_sample(target, generator)
        # 2. G's condition (plus what the model derives from the source, as at inference), dropped for CFG, and
        # task dropout (the "default" task at inference)
        cond = core.source_condition_from_latents(batch["cond"], batch["sce_latents"])
        cond = drop_condition(bb, cond, self.cond_drop_prob, generator)
        tasks = drop_task_ids(batch["task_id"], self.loss.task_drop_prob, generator)
        # 3. masks at latent resolution; the perturbed SCE pass only on L_grad's steps
        latent_mask, mpd_target = loss_masks(batch["mask"], bb.latent_map, target.shape[1], core.mpd.scale)
        out = model(sample.model_input, sample.timestep, cond, batch["sce_latents"], tasks,
                    perturb_mask=latent_mask, perturb_delta=self.loss.grad_delta_at(step),
                    num_frames=batch["mask"].shape[1])
        # 4. Eq. 7
        terms = region_aware_loss(out, sample.target, latent_mask, mpd_target, self.loss)
        return ObjectiveStep(terms=terms, output=out, cond=cond, latent_mask=latent_mask)


class I2VObjective:
    """Plain image-to-video training of the backbone itself (all denoiser parameters).

    For worlds with no pretrained backbone (the procedural world): the same loop, checkpoints and
    metrics as GenProp, with the backbone's own noising and target.

    Args:
        cond_drop_prob (float): probability of training with the null condition (for CFG).
    """

    def __init__(self, cond_drop_prob: float):
        self.cond_drop_prob = cond_drop_prob

    @staticmethod
    def trainable(backbone: nn.Module) -> dict[str, nn.Parameter]:
        """Every backbone parameter except the latent map and the frozen text/image encoders."""
        frozen = ("latent_map.", "text_encoder.", "image_encoder.")
        return {n: p for n, p in backbone.named_parameters() if not n.startswith(frozen)}

    def __call__(self, model: nn.Module, batch: dict, step: int,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        bb = unwrap(model)
        sample = bb.training_sample(batch["target_latents"], generator)
        cond = drop_condition(bb, batch["cond"], self.cond_drop_prob, generator)
        pred = model(sample.model_input, sample.timestep, cond)
        mse = F.mse_loss(pred.float(), sample.target.float())
        terms = {"loss": mse, "mse": mse}
        check_finite(terms, step, batch.get("keys", []))
        return terms
