"""GenPropModel: frozen I2V backbone G + Selective Content Encoder + Mask Prediction Decoder + task embeddings.

The paper's model (Sec. 3): G's prediction guided by what the SCE injects (Eq. 1-3), and the MPD's mask read
from G's penultimate block. The model computes predictions only; ``genprop.losses`` turns them into the
region-aware loss (Eq. 4-7). Both SCE passes that L_grad needs (clean and masked-perturbed source latents) run
inside ``forward`` so DDP/FSDP see every parameter use in one call. ``forward`` is two stages an extension
(``GenPropConfig.extension``, a subclass built by ``genprop.models.build_genprop``) can compose with a stage of
its own between them: :meth:`GenPropModel.encode` (G's input and the SCE) and :meth:`GenPropModel.decode` (G's
blocks with the injections, and the MPD). Checkpoints
hold the trainable weights only (``genprop_trainable.safetensors``) beside ``genprop_config.json``, which names
the backbone; no pickle is read on the loading path.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from genprop.errors import CheckpointError
from genprop.models.backbones import build_backbone
from genprop.models.backbones.interface import VideoBackbone, seeded
from genprop.models.content_encoder import SelectiveContentEncoder
from genprop.models.genprop_config import GenPropConfig
from genprop.models.mask_decoder import MaskPredictionDecoder
from genprop.models.task_embedding import TaskEmbedding
from genprop.models.trained_clip import TrainedClip, load_trained_clip, save_trained_clip
from genprop.models.unit_outputs import own

CONFIG_NAME = "genprop_config.json"
WEIGHTS_NAME = "genprop_trainable.safetensors"
FORMAT = "genprop-trainable-v1"


@dataclass
class GenPropOutput:
    """What ``GenPropModel.forward`` returns.

    Attributes:
        prediction (Tensor): (B, T_lat, C, h, w) G's raw output, in the backbone's parameterisation.
        mask (Tensor | None): (B, T_video, h, w) the MPD's mask prediction (None when not asked for).
        sce_features (list[Tensor]): the injections (what the SCE adds to G), each as a grid (B, T_lat, C_i, h_i, w_i).
        sce_features_perturbed (list[Tensor] | None): the same for the masked-perturbed source latents.
        delta (float): the perturbation size used (0 when there was no perturbed pass).
    """

    prediction: torch.Tensor
    mask: torch.Tensor
    sce_features: list
    sce_features_perturbed: list | None = None
    delta: float = 0.0


@dataclass
class EncodedInputs:
    """What :meth:`GenPropModel.encode` hands to :meth:`GenPropModel.decode`.

    Attributes:
        ctx: the backbone context (G's conditioning and channel-concatenated input).
        g_hidden (Tensor): G's embedded input (the input layer's output).
        task_emb (Tensor): (B, task_dim) the task embeddings.
        injections (list[tuple[Tensor, ...]]): per SCE block, what is added to G's block outputs.
        perturbed (list[tuple[Tensor, ...]] | None): the same for the masked-perturbed source latents (L_grad).
        delta (float): the perturbation size (0 without a perturbed pass).
        sce_hidden (Tensor): the SCE's last hidden state, for the rows it ran on (the conditional half when it is
            shared across classifier-free guidance's halves, see ``sce_shared``).
        sce_shared (bool): the SCE ran on the conditional half only and its features serve both halves.
        mpd_hint (Tensor | None): (B, L, D) added to G's penultimate features where the MPD reads them (an
            extension's own region estimate: the anchoring gate's, ``AnchoringConfig.mpd_reads_gate``); None: the
            paper's MPD input.
    """

    ctx: object
    g_hidden: torch.Tensor
    task_emb: torch.Tensor
    injections: list
    perturbed: list | None
    delta: float
    sce_hidden: torch.Tensor
    sce_shared: bool
    mpd_hint: torch.Tensor | None = None


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

    # the extension this class implements (None: the paper's model); ``genprop.models.build_genprop`` picks the
    # class a config names
    extension: str | None = None

    def __init__(self, config: GenPropConfig, backbone: VideoBackbone | None = None):
        super().__init__()
        if config.extension != self.extension:
            raise ValueError(f"{type(self).__name__} cannot build {_model_name(config)}: build it with "
                             "genprop.models.build_genprop, which picks the model a config names")
        if backbone is None:
            backbone = build_backbone(config.required_backbone)
        elif backbone.kind != config.backbone_kind:
            raise CheckpointError(f"config names backbone {config.backbone_kind!r} but a {backbone.kind!r} backbone "
                                  "was passed")
        self.config = config
        self.backbone = backbone
        # The training clips' shape (``genprop_clip.json``); set by from_pretrained or the training run.
        self.trained_clip: TrainedClip | None = None
        with seeded(config.seed):
            self.task_embedding = TaskEmbedding(config.task_dim, config.num_tasks)
            self.sce = SelectiveContentEncoder.from_backbone(backbone, config.num_sce_blocks(backbone), config.task_dim)
            scale = config.mask_scale if config.mask_scale is not None else int(backbone.latent_map.spatial_factor)
            self.mpd = MaskPredictionDecoder.from_backbone(backbone, config.task_dim, scale)

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

    def parameter_groups(self, named: dict[str, nn.Parameter]) -> list[dict]:
        """Optimiser groups over the trainable parameters ``named`` (keyed as ``named_parameters``): one group at
        the run's learning rate (``lr_scale`` 1); an extension may put its own parameters in groups of their own."""
        return [{"params": list(named.values()), "lr_scale": 1.0}]

    def source_condition(self, cond: dict, source_video: torch.Tensor, first_frame: torch.Tensor) -> dict:
        """G's conditioning plus what the model derives from the source video and the edited first frame, from
        pixels (propagation). The paper's model derives nothing: ``cond`` itself.

        Args:
            cond (dict): G's conditioning from ``backbone.encode_condition``.
            source_video (Tensor): (B, T, 3, H, W) in [-1, 1], the source video as the SCE gets it.
            first_frame (Tensor): (B, 3, H, W) in [-1, 1], G's (edited) first frame.
        """
        return cond

    def source_condition_from_latents(self, cond: dict, sce_latents: torch.Tensor) -> dict:
        """:meth:`source_condition` from latents (a training batch holds latents only): ``cond`` itself here.

        Args:
            cond (dict): G's conditioning. sce_latents (Tensor): (B, T_lat, C, h, w) the source latents.
        """
        return cond

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
            cond (dict): G's conditioning from ``backbone.encode_condition`` (edited or original first frame, prompt)
                and :meth:`source_condition`.
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
        enc = self.encode(model_input, timestep, cond, sce_latents, task_ids, perturb_mask, perturb_delta,
                          share_sce_across_cfg)
        return self.decode(enc, num_frames, predict_mask)

    def encode(self, model_input: torch.Tensor, timestep: torch.Tensor, cond: dict, sce_latents: torch.Tensor,
               task_ids: torch.Tensor, perturb_mask: torch.Tensor | None = None, perturb_delta: float = 0.0,
               share_sce_across_cfg: bool = False) -> EncodedInputs:
        """G's conditioning and embedded input, and what the SCE injects (arguments as :meth:`forward`)."""
        bb = self.backbone
        # 1. G's conditioning c and its input layer on z_t
        ctx = bb.prepare(model_input, timestep, cond)
        g_hidden = bb.embed(ctx.x_in, ctx)
        task_emb = self.task_embedding(task_ids)
        # 2. E(V): the SCE on the source latents, fused with G's embedded input, and 3. for L_grad the same pass
        # on V + delta m (the source latents shifted inside the mask only). Both passes run as one batch of 2B:
        # the same FLOPs in half the ops, which is what a step costs on small models.
        x_sce = bb.sce_input(model_input, sce_latents, cond, timestep)
        perturbed, shared = None, False
        if perturb_delta and perturb_mask is not None:
            shifted = sce_latents + perturb_delta * perturb_mask.to(sce_latents.dtype)
            x_both = torch.cat([x_sce, bb.sce_input(model_input, shifted, cond, timestep)])
            both, hidden = self._sce(x_both, _ctx_twice(ctx), torch.cat([g_hidden] * 2), torch.cat([task_emb] * 2))
            half = x_sce.shape[0]
            injections = [tuple(t[:half] for t in block) for block in both]
            perturbed = [tuple(t[half:] for t in block) for block in both]
            hidden = hidden[:half]
        elif share_sce_across_cfg:
            half = x_sce.shape[0] // 2  # rows (B or B*T) of the unconditional half
            one, hidden = self._sce(x_sce[half:], _ctx_second_half(ctx), g_hidden[half:],
                                    task_emb[task_emb.shape[0] // 2:])
            injections = [tuple(torch.cat([t, t]) for t in block) for block in one]
            shared = True
        else:
            injections, hidden = self._sce(x_sce, ctx, g_hidden, task_emb)
        return EncodedInputs(ctx=ctx, g_hidden=g_hidden, task_emb=task_emb, injections=injections,
                             perturbed=perturbed, delta=float(perturb_delta) if perturbed is not None else 0.0,
                             sce_hidden=hidden, sce_shared=shared)

    def decode(self, enc: EncodedInputs, num_frames: int | None = None, predict_mask: bool = True) -> GenPropOutput:
        """G(z_t, c, E(V)): G's blocks with the injections added, then the MPD on G's penultimate block."""
        bb = self.backbone
        # 4. G's blocks, each of the first N followed by the SCE's injection
        prediction, penultimate = bb.trunk(enc.ctx, enc.g_hidden, enc.injections)
        # 5. the MPD: a copy of G's last block on its penultimate features, and the mask head
        mpd_input = penultimate if enc.mpd_hint is None else penultimate + enc.mpd_hint.to(penultimate.dtype)
        mask = self.mpd(bb, enc.ctx, mpd_input, enc.task_emb, num_frames) if predict_mask else None

        def grids(inj):
            return [own(bb.feature_grid(t, enc.ctx)) for block in inj for t in block]

        # the SCE's features are returned for L_grad only, on the steps that run its perturbed pass
        perturbed = enc.perturbed is not None
        return GenPropOutput(prediction=own(prediction), mask=mask,
                             sce_features=grids(enc.injections) if perturbed else [],
                             sce_features_perturbed=grids(enc.perturbed) if perturbed else None, delta=enc.delta)

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
    def from_pretrained(cls, directory: str, backbone: VideoBackbone | None = None,
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
        config = read_config(directory)
        pretrained = config.required_backbone.pretrained
        if backbone is None and pretrained and pretrained.startswith(("./", "../")):
            # a backbone shipped beside the checkpoint (models/procedural-genprop -> models/procedural-backbone)
            where = os.path.normpath(os.path.join(directory, pretrained))
            config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, pretrained=where))
        if expected_backbone is not None and config.backbone_kind != expected_backbone:
            raise CheckpointError(f"{directory}: checkpoint is for backbone {config.backbone_kind!r}, "
                                  f"expected {expected_backbone!r}")
        if config.extension != cls.extension:
            raise CheckpointError(f"{directory}: a checkpoint of {_model_name(config)}; load it with "
                                  "genprop.models.load_genprop, which builds the model its config names")
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
                                  f"{config.num_sce_blocks(model.backbone)} SCE blocks; missing tensors {missing[:5]}"
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


def read_config(directory: str) -> GenPropConfig:
    """The ``genprop_config.json`` of a checkpoint directory.

    Raises:
        CheckpointError: the file is missing or does not hold a GenProp config (the message names it).
    """
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"{directory}: not a GenProp checkpoint, {CONFIG_NAME} is missing")
    with open(path) as f:
        try:
            return GenPropConfig.from_dict(json.load(f))
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: unreadable GenProp config ({e})") from e


def _model_name(config: GenPropConfig) -> str:
    return "the paper's GenProp" if config.extension is None else f"a GenProp with the {config.extension!r} extension"
