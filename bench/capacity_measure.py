"""Activation memory behind ``bench/plan_capacity.py``, measured on tensors (CPU, or fake tensors at real size).

* :func:`flash_accounting`: ``F.scaled_dot_product_attention`` saves what FlashAttention-2 / the memory-efficient
  kernel keep for backward (q, k, v, the output, a fp32 logsumexp of (B, heads, L_q)), never an L_q x L_k matrix,
  whatever kernel this machine picks (torch's CPU flash kernel keeps out + logsumexp too; the meta device's math
  decomposition would keep the softmax matrix); its backward recomputes through the plain kernel.
* :class:`SavedBytes`: ``saved_tensors_hooks`` sum the storage bytes autograd saves, each storage once,
  parameters and shared inputs excluded. :class:`PeakLive`: a dispatch mode tracking every storage an op
  allocates until it is freed (forward, recompute, backward); parameter gradients are freed on accumulation
  (:func:`drop_grads_on_accumulate`, as FSDP's reduce-scatter does), so its peak is activations + working set.
* :func:`fake_cpu`: a model built on the meta device as CPU fake tensors, so CPU bf16 autocast and the model's own
  fp32 SCE path run as on a GPU, at full size, with no memory and no compute.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

_SDPA = F.scaled_dot_product_attention


class _FlashAccounted(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        with torch.no_grad():
            out = _SDPA(q, k, v)
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)  # what flash kernels keep besides out
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _out, _lse = ctx.saved_tensors
        with torch.enable_grad():
            ins = [t.detach().requires_grad_(n) for t, n in zip((q, k, v), ctx.needs_input_grad)]
            out = _SDPA(*ins)
            wanted = [t for t in ins if t.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad))
        return tuple(next(grads) if t.requires_grad else None for t in ins)


def _flash_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if attn_mask is not None or is_causal or dropout_p or scale is not None or enable_gqa:  # not GenProp's calls
        return _SDPA(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)
    return _FlashAccounted.apply(query, key, value)


@contextlib.contextmanager
def flash_accounting():
    """Inside: every plain SDPA call saves what a GPU flash kernel saves (see the module docstring)."""
    F.scaled_dot_product_attention = _flash_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = _SDPA


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


class SavedBytes:
    """Bytes autograd saves for backward inside the ``with`` block (each storage once).

    Args:
        exclude (iterable of Tensor): tensors whose storages are not counted (parameters, shared inputs).
    """

    def __init__(self, exclude=()):
        self.excluded = {_storage_key(t) for t in exclude}
        self.storages: dict[int, int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t):
        key = _storage_key(t)
        if key not in self.excluded:
            self.storages[key] = t.untyped_storage().nbytes()
        return t

    @property
    def total(self) -> int:
        return sum(self.storages.values())

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


class PeakLive(TorchDispatchMode):
    """Peak bytes of the storages that ops allocate inside the mode and that are still referenced.

    Args:
        exclude (iterable of Tensor): tensors that exist before (parameters, buffers, inputs): an op returning a
            view of one allocates nothing.
    """

    def __init__(self, exclude=()):
        super().__init__()
        self.excluded = {_storage_key(t) for t in exclude}
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = self.peak = 0
        self.label = self.peak_label = ""  # set by the caller (phase, running module); kept at the peak

    def _sweep(self):
        for key, (ref, n) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                st = t.untyped_storage()
                if st._cdata in self.excluded:
                    continue
                entry = self.live.get(st._cdata)
                if entry is None or entry[0].expired():  # new, or a freed storage's address reused
                    if entry is not None:
                        self.current -= entry[1]
                    self.live[st._cdata] = (StorageWeakRef(st), st.nbytes())
                    self.current += st.nbytes()
        # ``current`` only overcounts (freed storages not yet swept), so the peak is exact if every candidate
        # for a new peak is checked after a sweep
        if self.current > self.peak:
            self._sweep()
            if self.current > self.peak:
                self.peak, self.peak_label = self.current, self.label
        return out


def drop_grads_on_accumulate(params) -> list:
    """Free each parameter's gradient once accumulated (as FSDP's reduce-scatter does); returns the hooks."""
    return [p.register_post_accumulate_grad_hook(lambda q: setattr(q, "grad", None)) for p in params if p.requires_grad]


def _replace_tensors(module: nn.Module, fn, floating_only: bool = False) -> nn.Module:
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            if p is not None and (p.is_floating_point() or not floating_only):
                m._parameters[name] = nn.Parameter(fn(p.data), requires_grad=p.requires_grad)
        for name, b in list(m._buffers.items()):
            if b is not None and (b.is_floating_point() or not floating_only):
                m._buffers[name] = fn(b)
    return module


def fake_cpu(module: nn.Module, mode) -> nn.Module:
    """Replace every parameter and buffer of a meta-device ``module`` by a CPU fake tensor of ``mode``
    (a ``FakeTensorMode``): shapes and dtypes kept, no memory, CPU autocast applies."""
    from torch._subclasses.fake_tensor import FakeTensor

    cpu = torch.device("cpu")
    # (a CPU tensor some module made despite the meta device goes through ``from_tensor``)
    return _replace_tensors(module, lambda t: FakeTensor(mode, t, cpu) if t.is_meta else mode.from_tensor(t))


def cast_params(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast floating parameters and buffers in place without ``Module.to`` (which fake tensors refuse)."""
    return _replace_tensors(module, lambda t: t.to(dtype), floating_only=True)


# ------------------------------------------------------------------------------------------- Wan blocks
def block_inputs(dim: int, grid: tuple[int, int, int], head_dim: int = 128, context: int = 769):
    """(hidden states, context, timestep projection, rotary tables) for one block over a latent token grid."""
    tokens = grid[0] * grid[1] * grid[2]
    ang = torch.randn(1, tokens, 1, head_dim)
    return torch.randn(1, tokens, dim), torch.randn(1, context, dim), torch.randn(1, 6, dim), (ang.cos(), ang.sin())


def wan_block_profile(dim: int, ffn: int, heads: int, grid, kind: str, batch: int = 1, fake: bool = False) -> dict:
    """Memory of one Wan block's forward + backward (shared context, modulation and rotary tables excluded).

    ``kind``: "frozen" (G's blocks: bf16 weights without gradients, input needing one), "mpd" (fp32 weights under
    bf16 autocast, trained), "sce" (fp32 weights, autocast off, trained: the SCE's copies). Runs on the CPU, or with
    ``fake`` on CPU fake tensors (any size, no compute).

    Returns:
        {"saved", "fwd", "peak"} and the same with "_ckpt" (activation checkpointing): bytes saved for backward,
        the peak of live bytes the forward allocates (output included) and that of forward + backward (output,
        output gradient, recompute and transients included; the input and parameter gradients excluded).
    """
    from diffusers.models.transformers.transformer_wan import WanTransformerBlock
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.checkpoint import checkpoint

    mode = FakeTensorMode() if fake else contextlib.nullcontext()
    with torch.device("meta") if fake else contextlib.nullcontext():  # as Wan2.1 I2V builds its blocks
        blk = WanTransformerBlock(dim, ffn, heads, "rms_norm_across_heads", True, 1e-6, added_kv_proj_dim=dim)
    if kind == "frozen":
        cast_params(blk, torch.bfloat16).requires_grad_(False)
    if fake:
        fake_cpu(blk, mode)
    out = {}
    hooks = drop_grads_on_accumulate(blk.parameters())
    with mode:
        x, ctx, temb, rot = block_inputs(dim, grid, dim // heads)
        x, ctx, temb = (t.to(torch.float32 if kind == "sce" else torch.bfloat16).expand(batch, -1, -1).contiguous()
                        for t in (x, ctx, temb))
        x.requires_grad_(True)
        shared = [*blk.parameters(), ctx, temb, *rot]
        for ck in (False, True):
            auto = torch.autocast("cpu", dtype=torch.bfloat16, enabled=kind == "mpd")
            with flash_accounting(), PeakLive(exclude=[*shared, x]) as tracker:
                with auto, SavedBytes(exclude=shared) as saved:
                    y = (checkpoint(blk, x, ctx, temb, rot, use_reentrant=False) if ck else
                         blk(x, ctx, temb, rot))
                fwd = tracker.peak
                y.backward(torch.ones_like(y))
            x.grad = None
            del y
            sfx = "_ckpt" if ck else ""
            out["saved" + sfx], out["fwd" + sfx], out["peak" + sfx] = saved.total, fwd, tracker.peak
    for h in hooks:
        h.remove()
    return out


def injection_saved(dim: int, tokens: int, batch: int = 1) -> int:
    """Bytes one SCE injection MLP (fp32, trained) saves for backward, its input excluded (the block's output,
    which the next block saves too)."""
    from genprop.models.content_encoder import InjectionMLP

    mlp = InjectionMLP(dim, "tokens")
    x = torch.randn(batch, tokens, dim, requires_grad=True)
    with SavedBytes(exclude=[*mlp.parameters(), x]) as saved:
        mlp(x)
    return saved.total


def fit_bytes(points: list[tuple[int, int, int]]) -> tuple[float, float, float]:
    """Least-squares fit of bytes = a tokens width + c width + e width^2 over (tokens, width, bytes): a per token,
    c the context's (769 text + image tokens), e weight-sized tensors (autocast's bf16 weight copies)."""
    import numpy as np

    m = np.array([[t * w, w, w * w] for t, w, _ in points], dtype=float)
    y = np.array([b for _, _, b in points], dtype=float)
    sol, *_ = np.linalg.lstsq(m, y, rcond=None)
    return tuple(float(v) for v in sol)


# ----------------------------------------------------------------------------------- whole GenProp steps
def small_wan(heads: int = 2, layers: int = 8) -> dict:
    """A scaled-down Wan2.1 I2V transformer config: the real head_dim 128, FFN ratio, image branch and 512 text
    tokens (the attention processor hard-codes 512), fewer heads and layers."""
    from genprop.models.backbones.wan_config import WAN_I2V_14B

    dim = 128 * heads
    return {**WAN_I2V_14B, "num_attention_heads": heads, "num_layers": layers, "text_dim": 64, "image_dim": 64,
            "freq_dim": 64, "added_kv_proj_dim": dim, "ffn_dim": round(dim * 13824 / 5120)}


def wan_genprop(transformer: dict, sce_blocks: int | None, device: str = "cpu", bf16_backbone: bool = True):
    """GenProp over a Wan transformer config as ``shard_model`` leaves it on a GPU: G in bf16 (``bf16_backbone``),
    SCE / MPD / task embeddings in fp32. The latent map is a stand-in with the VAE's grid (4x temporal, 8x
    spatial): the step reads precomputed latents and conditions, no VAE or text/image encoder runs."""
    from genprop.models import GenPropConfig, GenPropModel
    from genprop.models.backbones import WanBackbone, WanBackboneConfig
    from genprop.models.backbones.latent_maps import PixelUnshuffleLatents

    with torch.device(device):
        lm = PixelUnshuffleLatents(8)
        lm.temporal_factor = 4
        cfg = WanBackboneConfig(transformer=transformer)
        bb = WanBackbone(cfg, WanBackbone.build_transformer(cfg), lm)
        model = GenPropModel(GenPropConfig(backbone=cfg, sce_blocks=sce_blocks), backbone=bb).train()
    if bf16_backbone:
        cast_params(bb, torch.bfloat16)
    return model


def svd_genprop(device: str = "meta", bf16_backbone: bool = True):
    """GenProp over SVD-XT's real U-Net (no VAE or image encoder: the step reads precomputed inputs), on the meta
    device, G in bf16 (``bf16_backbone``), the trainable parts in fp32; for :func:`fake_cpu`."""
    from genprop.models import GenPropConfig, GenPropModel
    from genprop.models.backbones import SVDBackbone, SVDBackboneConfig
    from genprop.models.backbones.latent_maps import PixelUnshuffleLatents

    with torch.device(device):
        cfg = SVDBackboneConfig()
        bb = SVDBackbone(cfg, SVDBackbone.build_unet(cfg), PixelUnshuffleLatents(8), image_encoder=None)
        model = GenPropModel(GenPropConfig(backbone=cfg), backbone=bb).train()
    if bf16_backbone:
        cast_params(bb, torch.bfloat16)
    return model


def svd_batch(model, frames: int, height: int, width: int) -> dict:
    """A batch of one clip for SVD-XT (latents 4 x H/8 x W/8 per frame), random values."""
    b, h, w, s = 1, height // 8, width // 8, getattr(model.mpd, "scale", 1)
    cond = dict(image_embeds=torch.randn(b, 1, 1024), image_latents=torch.randn(b, 4, h, w),
                added_time_ids=torch.randn(b, 3))
    x = torch.randn(b, frames, 4, h, w)
    return dict(x=x, t=torch.full((b,), 0.5), cond=cond, src=torch.randn(b, frames, 4, h, w),
                mask=torch.ones(b, frames, 1, h, w), mpd_target=torch.ones(b, frames, h * s, w * s), frames=frames)


def wan_batch(model, frames: int, height: int, width: int) -> dict:
    """A batch of one clip for :func:`genprop_step` (random values; shapes as the shard reader's)."""
    tr = model.backbone.transformer.config
    b, t, h, w = 1, 1 + (frames - 1) // 4, height // 8, width // 8
    cond = dict(prompt_embeds=torch.randn(b, 512, tr.text_dim), image_embeds=torch.randn(b, 257, tr.image_dim),
                condition=torch.randn(b, t, 20, h, w))
    s = getattr(model.mpd, "scale", 1)  # the MPD's mask pixels per latent pixel and side
    return dict(x=torch.randn(b, t, 16, h, w), t=torch.full((b,), 500.0), cond=cond, src=torch.randn(b, t, 16, h, w),
                mask=torch.ones(b, t, 1, h, w), mpd_target=torch.ones(b, frames, h * s, w * s), frames=frames)


def genprop_step(model, batch: dict, perturbed: bool = True, autocast: bool = True):
    """Forward + region-aware loss of one GenProp step (L_grad's perturbed SCE pass when ``perturbed``) under CPU
    bf16 autocast as the trainer's CUDA autocast; returns the loss (call ``backward`` on it)."""
    from genprop.losses import region_aware_loss

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(batch["x"], batch["t"], batch["cond"], batch["src"], torch.ones(1, dtype=torch.long),
                    perturb_mask=batch["mask"], perturb_delta=1e-2 if perturbed else 0.0, num_frames=batch["frames"])
        return region_aware_loss(out, batch["x"], batch["mask"], batch["mpd_target"])["loss"]


def step_memory(model, batch: dict, checkpointing: bool, perturbed: bool = True, fake_mode=None) -> dict:
    """Bytes saved for backward at the end of the forward, the peak of live tensor bytes over forward + backward
    (parameter gradients freed on accumulation) of one GenProp step, and where the peak was (phase and the block
    last entered, e.g. "backward: sce.blocks.0" while checkpointing recomputes it).

    Runs on the CPU, or (``fake_mode``, a model made with :func:`fake_cpu`) on fake tensors at any size.
    """
    model.backbone.gradient_checkpointing = checkpointing
    params = list(model.parameters())
    external = [*params, *model.buffers(), *(t for t in tree_leaves(batch) if isinstance(t, torch.Tensor))]
    tracker = PeakLive(exclude=external)
    phase = ["forward"]
    hooks = drop_grads_on_accumulate(params) + [
        mod.register_forward_pre_hook(lambda _m, _a, n=name: setattr(tracker, "label", f"{phase[0]}: {n}"))
        for name, mod in model.named_modules() if 1 <= name.count(".") <= 3 and "backbone.latent_map" not in name]
    try:
        with fake_mode or contextlib.nullcontext(), flash_accounting(), tracker:
            with SavedBytes(exclude=external) as saved:
                loss = genprop_step(model, batch, perturbed)
            phase[0] = tracker.label = "backward"
            loss.backward()
    finally:
        for h in hooks:
            h.remove()
        model.backbone.gradient_checkpointing = False
    return {"saved": saved.total, "peak": tracker.peak, "at": tracker.peak_label}


def real_memory(backbone: str, frames: int, height: int, width: int, checkpointing: bool,
                perturbed: bool = True) -> dict:
    """:func:`step_memory` of GenProp on the real Wan2.1 I2V 14B or SVD-XT config, CPU fake tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from genprop.models.backbones.wan_config import WAN_I2V_14B

    mode = FakeTensorMode()
    if backbone == "wan":
        model = fake_cpu(wan_genprop(dict(WAN_I2V_14B), None, device="meta"), mode)
        with mode:
            batch = wan_batch(model, frames, height, width)
    else:
        model = fake_cpu(svd_genprop(), mode)
        with mode:
            batch = svd_batch(model, frames, height, width)
    return step_memory(model, batch, checkpointing, perturbed, fake_mode=mode)


def wan_coefficients(heads=(1, 2, 4), grids=((2, 8, 8), (4, 16, 16))) -> dict:
    """Per-block memory of the three kinds of Wan block GenProp runs, measured on the CPU on scaled-down blocks
    (head_dim 128, ``heads`` heads, FFN 2.7 x width as 13824 / 5120, the real 769 context tokens) over latent
    token ``grids``, each quantity fitted as bytes = a L D + c D + e D^2 (:func:`fit_bytes`).

    Returns:
        {"frozen" | "mpd" | "sce": {quantity: (a, c, e)}} (quantities of :func:`wan_block_profile`; the SCE at
        batch 2: both passes of L_grad), "inj": bytes per L D one injection MLP saves at batch 2, "points".
    """
    out, points = {}, 0
    for kind, batch in (("frozen", 1), ("mpd", 1), ("sce", 2)):
        rows: dict[str, list] = {}
        for h in heads:
            dim = 128 * h
            for grid in grids:
                tokens = grid[0] * grid[1] * grid[2]
                for q, v in wan_block_profile(dim, round(dim * 13824 / 5120), h, grid, kind, batch).items():
                    rows.setdefault(q, []).append((tokens, dim, v))
                points += 1
        out[kind] = {q: fit_bytes(v) for q, v in rows.items()}
    dim, tokens = 128 * heads[-1], grids[-1][0] * grids[-1][1] * grids[-1][2]
    out["inj"] = injection_saved(dim, tokens, batch=2) / (tokens * dim)
    out["points"] = points
    return out
