"""GenPropModel: frozen I2V backbone G + Selective Content Encoder + Mask Prediction Decoder + task embeddings.

The model computes predictions only; ``genprop.losses`` turns them into the region-aware loss. Both
SCE passes that L_grad needs (clean and masked-perturbed source latents) run inside ``forward`` so
DDP/FSDP see every parameter use in one call. Checkpoints hold the trainable weights only
(``genprop_trainable.safetensors``) beside ``genprop_config.json``, which names the backbone; no
pickle is read on the loading path.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from genprop.errors import GenPropError
from genprop.models.backbones import (BackboneConfig, SVDBackboneConfig, WanBackboneConfig, backbone_config_from_dict,
                                      backbone_kind, build_backbone)
from genprop.models.backbones.interface import seeded
from genprop.models.content_encoder import SelectiveContentEncoder
from genprop.models.flow_anchor import FLOW_ANCHOR_KEY
from genprop.models.mask_decoder import MaskPredictionDecoder
from genprop.models.source_anchor import SourceAnchorGate
from genprop.models.task_embedding import TaskEmbedding
from genprop.models.trained_clip import TrainedClip, load_trained_clip, save_trained_clip

CONFIG_NAME = "genprop_config.json"
WEIGHTS_NAME = "genprop_trainable.safetensors"
FORMAT = "genprop-trainable-v1"


class CheckpointError(GenPropError, ValueError):
    """A GenProp checkpoint that cannot be loaded (missing/extra tensor, wrong shape, wrong backbone)."""


def default_sce_blocks(config: BackboneConfig) -> int:
    """A quarter of the backbone's blocks: Wan num_layers // 4; SVD 2 (of its 9 down/mid/up blocks)."""
    if isinstance(config, WanBackboneConfig):
        return max(1, config.transformer.get("num_layers", 40) // 4)
    return 2


@dataclass(frozen=True)
class GenPropConfig:
    """Configuration of a GenProp model (saved as JSON beside every checkpoint).

    Args:
        backbone (SVDBackboneConfig | WanBackboneConfig): the frozen I2V backbone.
        sce_blocks (int | None, default None): N blocks copied into the SCE; None = ``default_sce_blocks``.
        task_dim (int, default 256): task embedding width.
        num_tasks (int, default 4): task ids (0 default, 1 copy-paste, 2 mask-fill, 3 colour fill).
        fp32_sce_under_autocast (bool, default True): run the SCE (both passes) in fp32 when autocast is on,
            so L_grad's finite difference is not lost in bf16 rounding.
        seed (int, default 0): seed for the freshly initialised layers (injection MLPs, MPD head, tasks).
        source_anchor (bool, default False): a zero-initialised gate read from the SCE moves G's anchor towards the
            source video (``genprop.models.source_anchor``); Wan backbones only (their adapter is preconditioned
            around an anchor). Meant for anchored backbones such as the procedural one.
        flow_anchor (bool, default False): the gate's second channel moves G's anchor towards the first-frame edit
            carried by the source's optical flow (``genprop.models.flow_anchor``; G's conditioning then carries
            ``cond["flow_anchor"]``); needs ``source_anchor``.
    """

    backbone: BackboneConfig = field(default_factory=WanBackboneConfig)
    sce_blocks: int | None = None
    task_dim: int = 256
    num_tasks: int = 4
    fp32_sce_under_autocast: bool = True
    seed: int = 0
    source_anchor: bool = False
    flow_anchor: bool = False

    def __post_init__(self):
        if self.flow_anchor and not self.source_anchor:
            raise ValueError("flow_anchor is the source-anchor gate's second channel: it needs source_anchor")

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

    @property
    def backbone_kind(self) -> str:
        return backbone_kind(self.backbone)

    @property
    def num_sce_blocks(self) -> int:
        return self.sce_blocks if self.sce_blocks is not None else default_sce_blocks(self.backbone)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "backbone"}
        return {"backbone": self.backbone_kind, "backbone_config": dataclasses.asdict(self.backbone), **d}

    @classmethod
    def from_dict(cls, d: dict) -> "GenPropConfig":
        d = dict(d)
        kind = d.pop("backbone")
        bb = backbone_config_from_dict(kind, d.pop("backbone_config"))
        return cls(backbone=bb, **d)


@dataclass
class GenPropOutput:
    """What ``GenPropModel.forward`` returns.

    Attributes:
        prediction (Tensor): (B, T_lat, C, h, w) G's raw output, in the backbone's parameterisation.
        mask (Tensor | None): (B, T_video, h, w) the MPD's mask prediction (None when not asked for).
        sce_features (list[Tensor]): the injections (what the SCE adds to G), each as a grid (B, T_lat, C_i, h_i, w_i).
        sce_features_perturbed (list[Tensor] | None): the same for the masked-perturbed source latents.
        delta (float): the perturbation size used (0 when there was no perturbed pass).
        source_gate (Tensor | None): (B, T_lat, K, h, w) the source-anchor gate (None without ``source_anchor``);
            K = 2 with ``flow_anchor`` (channel 0 towards the source, 1 towards the flow anchor).
    """

    prediction: torch.Tensor
    mask: torch.Tensor
    sce_features: list
    sce_features_perturbed: list | None = None
    delta: float = 0.0
    source_gate: torch.Tensor | None = None


def _ctx_to_float(ctx):
    """A copy of a backbone context with every floating tensor in fp32 (for the fp32 SCE under autocast)."""
    def conv(v):
        if torch.is_tensor(v) and v.is_floating_point():
            return v.float()
        if isinstance(v, tuple):
            return tuple(conv(x) for x in v)
        return v
    return dataclasses.replace(ctx, **{f.name: conv(getattr(ctx, f.name)) for f in dataclasses.fields(ctx)})


def _map_ctx(ctx, per_sample, batch: int):
    """A copy of a backbone context with ``per_sample`` applied to every per-sample tensor (leading dim a multiple
    of the batch: B, or B*T for the U-Net's frame-flattened layout; shared ones such as the rotary tables lead
    with 1 and are kept), and ``batch`` as its batch size."""
    b = ctx.batch

    def apply(v):
        if torch.is_tensor(v) and v.dim() and v.shape[0] % b == 0:
            return per_sample(v)
        if isinstance(v, tuple):
            return tuple(apply(x) for x in v)
        return v

    fields = {f.name: apply(getattr(ctx, f.name)) for f in dataclasses.fields(ctx)}
    fields["batch"] = batch
    return dataclasses.replace(ctx, **fields)


def _ctx_twice(ctx):
    """A backbone context for a batch of 2B: every per-sample tensor stacked twice."""
    return _map_ctx(ctx, lambda v: torch.cat([v, v]), 2 * ctx.batch)


def _ctx_second_half(ctx):
    """A backbone context for the second half of a batch of 2B (CFG's conditional rows)."""
    return _map_ctx(ctx, lambda v: v[v.shape[0] // 2:], ctx.batch // 2)


class GenPropModel(nn.Module):
    """Frozen backbone + SCE + MPD + task embeddings. Trainable: SCE (with fusion and injections), MPD, tasks.

    Args:
        config (GenPropConfig): the configuration.
        backbone (SVDBackbone | WanBackbone | None): an already-built backbone matching ``config.backbone``;
            None builds it (``build_backbone``).
    """

    def __init__(self, config: GenPropConfig, backbone: nn.Module | None = None):
        super().__init__()
        if backbone is None:
            backbone = build_backbone(config.backbone)
        elif backbone.kind != config.backbone_kind:
            raise CheckpointError(f"config names backbone {config.backbone_kind!r} but a {backbone.kind!r} backbone "
                                  "was passed")
        self.config = config
        self.backbone = backbone
        # The training clips' shape (``genprop_clip.json``); set by from_pretrained or the training run.
        self.trained_clip: TrainedClip | None = None
        with seeded(config.seed):
            self.task_embedding = TaskEmbedding(config.task_dim, config.num_tasks)
            self.sce = SelectiveContentEncoder.from_backbone(backbone, config.num_sce_blocks, config.task_dim)
            self.mpd = MaskPredictionDecoder.from_backbone(backbone, config.task_dim)
            self.source_gate = None
            if config.source_anchor:
                if not hasattr(backbone, "reanchor"):
                    raise ValueError(f"source_anchor needs a Wan backbone (an adapter with an anchor); got "
                                     f"{backbone.kind!r}")
                self.source_gate = SourceAnchorGate(backbone.encoder_output_channels(0)[0], backbone.patch_volume,
                                                    backbone.latent_map.latent_channels, flow=config.flow_anchor)

    def train(self, mode: bool = True) -> "GenPropModel":
        """Train the new parts; the backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """SCE (with fusion and injections), MPD and task embeddings."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trainable weights, keyed as in ``state_dict`` (no ``backbone.`` entries)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def _sce(self, x_sce, ctx, g_hidden, task_emb):
        device_type = x_sce.device.type
        try:
            autocast_on = torch.is_autocast_enabled(device_type)
        except RuntimeError:  # a device type autocast does not know (meta)
            autocast_on = False
        if self.config.fp32_sce_under_autocast and autocast_on:
            with torch.autocast(device_type, enabled=False):
                return self.sce(self.backbone, x_sce.float(), _ctx_to_float(ctx), g_hidden.float(), task_emb.float(),
                                return_hidden=True)
        return self.sce(self.backbone, x_sce, ctx, g_hidden, task_emb, return_hidden=True)

    def forward(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict[str, torch.Tensor],
                sce_latents: torch.Tensor, task_ids: torch.Tensor, perturb_mask: torch.Tensor | None = None,
                perturb_delta: float = 0.0, num_frames: int | None = None,
                predict_mask: bool = True, share_sce_across_cfg: bool = False) -> GenPropOutput:
        """G's prediction guided by the SCE, and the MPD's mask.

        Args:
            model_input (Tensor): (B, T_lat, C, h, w) noisy latents as the backbone expects them.
            timestep (Tensor): (B,) or scalar, in the backbone's units.
            cond (dict): G's conditioning from ``backbone.encode_condition`` (edited or original first frame, prompt);
                with ``flow_anchor`` also ``cond["flow_anchor"]`` (``genprop.models.flow_anchor.with_flow_anchor``).
            sce_latents (Tensor): (B, T_lat, C, h, w) clean latents of the video given to the SCE.
            task_ids (LongTensor): (B,) task ids (0 default).
            perturb_mask (Tensor | None): (B, T_lat, 1, h, w) where to perturb the SCE input for L_grad.
            perturb_delta (float, default 0): the perturbation size; 0 skips the perturbed pass.
            num_frames (int | None): video frames of the clip (crops the MPD's output of a padded clip).
            predict_mask (bool, default True): run the MPD; the sampler skips it on every step but the last,
                whose mask is the only one it uses (``mask`` is then None).
            share_sce_across_cfg (bool, default False): the batch is classifier-free guidance's [unconditional,
                conditional] halves over the same source video: run the SCE once, on the conditional half, and
                inject its features into both halves (the sampler's default; see docs/design-decisions.md).
        """
        bb = self.backbone
        # 1. G's conditioning and input layer
        ctx = bb.prepare(model_input, timestep, cond)
        g_hidden = bb.embed(ctx.x_in, ctx)
        task_emb = self.task_embedding(task_ids)
        # 2. SCE on the source latents (fused with G's embedded input), and 3. for L_grad the same pass on the
        # source latents + delta inside the mask only. Both passes run as one batch of 2B: the same FLOPs in half
        # the ops, which is what a step costs on small models.
        x_sce = bb.sce_input(model_input, sce_latents, cond, timestep)
        perturbed = None
        if perturb_delta and perturb_mask is not None:
            shifted = sce_latents + perturb_delta * perturb_mask.to(sce_latents.dtype)
            x_both = torch.cat([x_sce, bb.sce_input(model_input, shifted, cond, timestep)])
            both, hidden = self._sce(x_both, _ctx_twice(ctx), torch.cat([g_hidden] * 2), torch.cat([task_emb] * 2))
            half = x_sce.shape[0]
            injections = [tuple(t[:half] for t in block) for block in both]
            perturbed = [tuple(t[half:] for t in block) for block in both]
            hidden = hidden[:half] if self.source_gate is not None else None  # (Wan: rows are samples)
        elif share_sce_across_cfg:
            half = x_sce.shape[0] // 2  # rows (B or B*T) of the unconditional half
            one, hidden = self._sce(x_sce[half:], _ctx_second_half(ctx), g_hidden[half:],
                                    task_emb[task_emb.shape[0] // 2:])
            injections = [tuple(torch.cat([t, t]) for t in block) for block in one]
            hidden = torch.cat([hidden, hidden]) if self.source_gate is not None else None
        else:
            injections, hidden = self._sce(x_sce, ctx, g_hidden, task_emb)
        # 4. source anchor: G's input and skip recomputed around a_s = a + g_s (s - a) [then a_s + g_w (w - a_s)],
        # the gate read from the SCE and the edit's footprints
        gate = None
        if self.source_gate is not None:
            flow = cond.get(FLOW_ANCHOR_KEY) if self.config.flow_anchor else None
            gate = self.source_gate(bb, hidden.to(g_hidden.dtype), ctx, cond, sce_latents, flow)  # (B,T_lat,K,h,w)
            anchor = SourceAnchorGate.anchor(gate, bb.anchor(cond, model_input), sce_latents, flow)
            ctx = bb.reanchor(ctx, model_input, timestep, cond, anchor)
            g_hidden = bb.embed(ctx.x_in, ctx)
        # 5. G's blocks with the injections added, then the MPD on G's penultimate block
        prediction, penultimate = bb.trunk(ctx, g_hidden, injections)
        mask = self.mpd(bb, ctx, penultimate, task_emb, num_frames) if predict_mask else None

        def grids(inj):
            return [bb.feature_grid(t, ctx) for block in inj for t in block]

        return GenPropOutput(prediction=prediction, mask=mask, sce_features=grids(injections),
                             sce_features_perturbed=grids(perturbed) if perturbed is not None else None,
                             delta=float(perturb_delta) if perturbed is not None else 0.0, source_gate=gate)

    # ---------------------------------------------------------------------------- checkpoints
    def save_pretrained(self, directory: str, weights: dict[str, torch.Tensor] | None = None,
                        trained_clip: TrainedClip | None = None) -> None:
        """Write ``genprop_config.json`` and the trainable weights as ``genprop_trainable.safetensors``.

        Args:
            directory (str): a local directory (created if missing).
            weights (dict[str, Tensor] | None): trainable tensors to write instead of the live ones (e.g. the EMA;
                keys as :meth:`trainable_state_dict`).
            trained_clip (TrainedClip | None): the training clips' shape, written as ``genprop_clip.json``
                (propagation's default window and working size); None = ``self.trained_clip`` when set.
        """
        from safetensors.torch import save_file

        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, CONFIG_NAME), "w") as f:
            json.dump(self.config.to_dict(), f, indent=2, sort_keys=True)
        source = weights if weights is not None else self.trainable_state_dict()
        if weights is not None and set(weights) != set(self.trainable_state_dict()):
            raise CheckpointError("weights to save do not match the model's trainable tensors")
        tensors = {k: v.detach().contiguous().cpu() for k, v in source.items()}
        save_file(tensors, os.path.join(directory, WEIGHTS_NAME),
                  metadata={"format": FORMAT, "backbone": self.config.backbone_kind})
        clip = trained_clip or self.trained_clip
        if clip is not None:
            save_trained_clip(directory, clip)

    @classmethod
    def from_pretrained(cls, directory: str, backbone: nn.Module | None = None,
                        expected_backbone: str | None = None) -> "GenPropModel":
        """Load a checkpoint written by :meth:`save_pretrained` (safetensors + JSON; no pickle).

        Args:
            directory (str): the checkpoint directory.
            backbone (nn.Module | None): an already-built backbone to reuse (its kind must match the config);
                None builds the config's, where a ``pretrained`` path starting with ``./`` or ``../`` is relative
                to ``directory``.
            expected_backbone (str | None): "svd"/"wan" to insist on; a checkpoint of the other backbone is refused.

        Raises:
            CheckpointError: missing files, a config of the other backbone, missing/unexpected tensors, wrong shapes.
        """
        from safetensors import safe_open

        cfg_path, w_path = os.path.join(directory, CONFIG_NAME), os.path.join(directory, WEIGHTS_NAME)
        for p in (cfg_path, w_path):
            if not os.path.isfile(p):
                raise CheckpointError(f"{directory}: not a GenProp checkpoint, {os.path.basename(p)} is missing")
        with open(cfg_path) as f:
            try:
                config = GenPropConfig.from_dict(json.load(f))
            except (TypeError, ValueError, KeyError) as e:
                raise CheckpointError(f"{cfg_path}: unreadable GenProp config ({e})") from e
        pretrained = getattr(config.backbone, "pretrained", None)
        if backbone is None and pretrained and pretrained.startswith(("./", "../")):
            # a backbone shipped beside the checkpoint (models/procedural-genprop -> models/procedural-backbone)
            where = os.path.normpath(os.path.join(directory, pretrained))
            config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, pretrained=where))
        if expected_backbone is not None and config.backbone_kind != expected_backbone:
            raise CheckpointError(f"{directory}: checkpoint is for backbone {config.backbone_kind!r}, "
                                  f"expected {expected_backbone!r}")
        with safe_open(w_path, framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("backbone") not in (None, config.backbone_kind):
                raise CheckpointError(f"{directory}: weights were saved for backbone {meta['backbone']!r} but "
                                      f"{CONFIG_NAME} names {config.backbone_kind!r}")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        model = cls(config, backbone=backbone)
        expected = model.trainable_state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise CheckpointError(f"{w_path}: does not match a {config.backbone_kind} GenProp with "
                                  f"{config.num_sce_blocks} SCE blocks; missing tensors {missing[:5]}"
                                  f"{' ...' if len(missing) > 5 else ''}, unexpected tensors {unexpected[:5]}"
                                  f"{' ...' if len(unexpected) > 5 else ''}")
        bad = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
               for k, v in expected.items() if tensors[k].shape != v.shape]
        if bad:
            raise CheckpointError(f"{w_path}: tensor shapes do not match the model: " + "; ".join(bad[:5]))
        model.load_state_dict(tensors, strict=False)
        try:
            model.trained_clip = load_trained_clip(directory)
        except ValueError as e:
            raise CheckpointError(str(e)) from e
        return model
