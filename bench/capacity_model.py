"""The capacity model behind ``bench/plan_capacity.py``.

* FLOPs of GenProp's training step on Wan2.1, counted analytically and checked against
  ``torch.utils.flop_counter.FlopCounterMode`` on the meta device; SVD's step, the Wan VAE encoder, UMT5 and CLIP
  counted by FlopCounterMode on meta / fake tensors (no weights, no compute). FLOPs are 2 x the multiply-adds of
  GEMMs and attention (what FlopCounterMode counts); norms, activations, RoPE and the loss are not counted.
* Per-GPU memory by training phase from the measured per-block coefficients (``capacity_measure``), per strategy.
* Step time at a stated utilisation, and the traffic of sequence (context) parallelism.
"""

from __future__ import annotations

import torch

GIB = 2 ** 30
MFU = 0.40
# dense peak FLOP/s (no sparsity), HBM, NVLink and network bandwidth per GPU and direction (SXM parts; 8 x HDR
# 200 Gb/s per 8 A100s, 8 x NDR 400 Gb/s per 8 H100s)
GPUS = {"A100 80GB": dict(bf16=312e12, tf32=156e12, fp32=19.5e12, memory=80 * GIB, nvlink=300e9, network=25e9),
        "H100 80GB": dict(bf16=989e12, tf32=494.5e12, fp32=66.9e12, memory=80 * GIB, nvlink=450e9, network=50e9)}
GPU_COUNTS = (8, 16, 64)
STATE = 4 + 4 + 8 + 4  # bytes per trainable parameter: fp32 master, fp32 gradient, AdamW's two moments, fp32 EMA
STRATEGIES = {"replicated": "backbone replicated in bf16; each SCE block its own FSDP unit, the SCE's other layers, "
                            "the MPD and the task embeddings one unit each (`strategy: fsdp`)",
              "sharded": "the same with the backbone's blocks sharded too, one gathered and one prefetched while G "
                         "runs (`strategy: fsdp` with `shard_backbone: true`)"}
TEXT_TOKENS, IMAGE_TOKENS = 512, 257  # UMT5 states (zero-padded to 512) and CLIP-H penultimate states


def wan_tokens(frames: int, height: int, width: int) -> int:
    """Transformer tokens of a clip: latent frames 1 + (T - 1) / 4, 8x spatial VAE, 1x2x2 patches."""
    return (1 + (frames - 1) // 4) * (height // 16) * (width // 16)


def block_forward(tokens: int, dim: int, ffn: int, context: tuple[int, int] = (TEXT_TOKENS, IMAGE_TOKENS)) -> dict:
    """Forward FLOPs of one Wan I2V block by group.

    ``proj``: self-attention q, k, v, out and cross-attention q, out on the tokens (6 x 2 L D^2);
    ``ffn``: 2 x 2 L D F; ``ctx_proj``: cross-attention k, v on the text and add_k, add_v on the image tokens;
    ``self_attn``: Q K^T and A V, 4 L^2 D; ``cross_attn``: 4 L (512 + 257) D.
    """
    L, D, (lt, li) = tokens, dim, context
    return {"proj": 12 * L * D * D, "ffn": 4 * L * D * ffn, "ctx_proj": 4 * (lt + li) * D * D,
            "self_attn": 4 * L * L * D, "cross_attn": 4 * L * (lt + li) * D}


def block_backward(fwd: dict, trainable: bool, input_grad: bool, attention: str = "flash") -> float:
    """Backward FLOPs of one block from its forward groups.

    A GEMM costs one forward per gradient it must produce: the input's (``input_grad``) and the weight's
    (``trainable``); the context projections never need an input gradient (G's conditioning is constant).
    Attention: "flash" = the fused kernels' backward, 2.5x forward (scores recomputed, then dQ, dK, dV; what
    FlopCounterMode counts for them); "math" = autograd through the two bmm, one bmm per needed gradient (what the
    meta device runs).
    """
    if not (trainable or input_grad):
        return 0.0
    gemm = (fwd["proj"] + fwd["ffn"]) * (trainable + input_grad) + fwd["ctx_proj"] * trainable
    if attention == "flash":
        return gemm + 2.5 * (fwd["self_attn"] + fwd["cross_attn"])
    return gemm + 2.0 * fwd["self_attn"] + (2.0 if trainable else 1.0) * fwd["cross_attn"]


def genprop_step_flops(transformer: dict, sce_blocks: int, tokens: int, perturbed: bool = True,
                       checkpointing: bool = False, attention: str = "flash", mask_outputs: int = 16) -> dict:
    """FLOPs of one GenProp training step on a Wan config, batch 1, by part and phase.

    G: condition embedder, patch embedding, every block forward; backward only where the gradient reaches the
    SCE's injections (added after G's blocks 0 .. N-1, so through G's blocks 1 .. L-1 and the output projection),
    input gradients only. SCE (batch 2 with L_grad's perturbed pass): patch embedding and fusion (weight gradients
    only), N trained blocks, N injection MLPs. MPD: a trained copy of the last block on G's penultimate output and
    its head (LayerNorm, D x D, D x ``mask_outputs`` per token: the MPD head's last layer). Checkpointing
    recomputes every block that has a backward once (G's block 0 has none).

    Returns:
        {"G" | "SCE" | "MPD": {"fwd", "bwd", "recompute"}} in FLOPs.
    """
    D = transformer["num_attention_heads"] * transformer["attention_head_dim"]
    F, layers, L = transformer["ffn_dim"], transformer["num_layers"], tokens
    patch = 2 * L * transformer["in_channels"] * 4 * D  # 1x2x2 patches of 36 channels
    m = 2 if perturbed else 1
    blk = block_forward(L, D, F)
    blk_f = sum(blk.values())
    frozen_b = block_backward(blk, trainable=False, input_grad=True, attention=attention)
    trained_b = block_backward(blk, trainable=True, input_grad=True, attention=attention)
    td, idim, fd = transformer["text_dim"], transformer["image_dim"], transformer["freq_dim"]
    embed = (2 * TEXT_TOKENS * (td * D + D * D) + 2 * IMAGE_TOKENS * (idim * idim + idim * D)
             + 2 * (fd * D + D * D + 6 * D * D))
    head = 2 * L * D * transformer["out_channels"] * 4
    g = {"fwd": embed + patch + layers * blk_f + head, "bwd": (layers - 1) * frozen_b + head,
         "recompute": (layers - 1) * blk_f if checkpointing else 0.0}
    inj = 2 * 2 * L * D * D  # two D x D linears per injection
    sce = {"fwd": m * (patch + 2 * L * D * D + sce_blocks * (blk_f + inj)),
           "bwd": m * (patch + 2 * L * D * D + sce_blocks * (trained_b + 2 * inj)),
           "recompute": m * sce_blocks * blk_f if checkpointing else 0.0}
    mpd_head = 2 * L * (D * D + D * mask_outputs)
    mpd = {"fwd": blk_f + mpd_head, "bwd": trained_b + 2 * mpd_head, "recompute": blk_f if checkpointing else 0.0}
    return {"G": g, "SCE": sce, "MPD": mpd}


def total(parts: dict) -> float:
    return sum(sum(p.values()) for p in parts.values())


def counted_step_flops(transformer: dict, sce_blocks: int, frames: int, height: int, width: int,
                       perturbed: bool = True) -> float:
    """FlopCounterMode's count of one GenProp step (forward + backward, no checkpointing) on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from capacity_measure import genprop_step, wan_batch, wan_genprop

    with torch.device("meta"):
        model = wan_genprop(transformer, sce_blocks, device="meta", bf16_backbone=False)
        batch = wan_batch(model, frames, height, width)
        with FlopCounterMode(display=False) as counter:
            genprop_step(model, batch, perturbed, autocast=False).backward()
    return float(counter.get_total_flops())


def _count(fn, fake: bool = False) -> float:
    """FlopCounterMode over ``fn`` (built and run on the meta device, or on fake CPU tensors), math attention."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    ctx = FakeTensorMode(allow_non_fake_inputs=True) if fake else torch.device("meta")
    with ctx, sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def vae_encode_flops(frames: int, height: int, width: int) -> float:
    """The Wan VAE encoder (``AutoencoderKLWan`` at its real config) on one clip, meta device."""
    from diffusers import AutoencoderKLWan

    def run():
        with torch.no_grad():
            AutoencoderKLWan().encode(torch.randn(1, 3, frames, height, width))
    return _count(run)


def umt5_flops(tokens: int = TEXT_TOKENS) -> float:
    """UMT5-XXL's encoder (Wan2.1's text encoder) on one zero-padded prompt, fake tensors."""
    from transformers import UMT5Config, UMT5EncoderModel

    from genprop.models.backbones.wan_config import WanBackboneConfig

    def run():
        with torch.no_grad():
            UMT5EncoderModel(UMT5Config(**WanBackboneConfig().text_encoder))(
                torch.zeros(1, tokens, dtype=torch.long), torch.ones(1, tokens, dtype=torch.long))
    return _count(run, fake=True)


def clip_flops() -> float:
    """CLIP ViT-H/14 (Wan2.1's image encoder) on one 224 x 224 first frame, fake tensors."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from genprop.models.backbones.wan_config import WanBackboneConfig

    def run():
        with torch.no_grad():
            CLIPVisionModel(CLIPVisionConfig(**WanBackboneConfig().image_encoder))(
                pixel_values=torch.randn(1, 3, 224, 224), output_hidden_states=True)
    return _count(run, fake=True)


def svd_step_flops(frames: int, height: int, width: int, perturbed: bool = True, backward: bool = True) -> float:
    """FlopCounterMode's count of one GenProp step on SVD-XT (forward, + backward with ``backward``, no
    checkpointing), fake CPU tensors (diffusers' SVD blocks make a CPU tensor, which the meta device refuses), math
    attention."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from capacity_measure import fake_cpu, genprop_step, svd_batch, svd_genprop

    mode = FakeTensorMode()
    model = fake_cpu(svd_genprop(bf16_backbone=False), mode)
    with mode, sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss = genprop_step(model, svd_batch(model, frames, height, width), perturbed, autocast=False)
        if backward:
            loss.backward()
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------------------- memory and time
def wan_activations(coef: dict, tokens: int, checkpointing: bool, layers: int = 40, sce: int = 10,
                    dim: int = 5120, perturbed: bool = True, bf16_sce: bool = False) -> dict:
    """Activation bytes of one GenProp step on Wan, batch 1, by phase, from the per-block coefficients.

    Phases: ``sce_end`` the end of the SCE's forward (its saved tensors and injection outputs, its last block's
    transient); ``fwd`` the end of G's forward (every block's saved tensors, the injections' outputs, one block's
    transient); ``top`` the first backward (the last G block or the MPD: saved tensors + that block's recompute
    and working set); ``sce`` the SCE's last block backward (after G's backward: the SCE's saved tensors, the
    buffered gradients of the other injections, that block's recompute and working set). G's block 0 saves
    nothing (its input has no gradient); the MPD's checkpointed input is G's penultimate output, already saved.
    ``bf16_sce``: the SCE under autocast (``fp32_sce_under_autocast: false``), estimated with the MPD's
    coefficients (fp32 weights under bf16 autocast) at the SCE's batch and bf16 injections.
    """
    L, D, sfx = tokens, dim, "_ckpt" if checkpointing else ""
    m = 2 if perturbed else 1

    def q(kind, what):
        a, c, e = coef["mpd" if kind == "sce" and bf16_sce else kind][what + sfx]
        scale = (m if bf16_sce else m / 2) if kind == "sce" else 1.0  # the SCE measured at batch 2, the MPD at 1
        return scale * a * L * D + c * D + e * D * D

    b = 2 if bf16_sce else 4
    inj = coef["inj"] * m / 2 * L * D * b / 4  # injection MLP: saved, output, buffered gradient
    out = grad = b * m * L * D
    mpd_saved = 0.0 if checkpointing else q("mpd", "saved")
    saved = sce * (q("sce", "saved") + inj) + (layers - 1) * q("frozen", "saved") + mpd_saved
    fwd = saved + sce * out + max(q("frozen", "fwd") - q("frozen", "saved"), q("mpd", "fwd") - mpd_saved)
    top = saved + max(q("frozen", "peak") - q("frozen", "saved"), q("mpd", "peak") - mpd_saved)
    per_sce = q("sce", "saved") + inj + grad
    sce_phase = (sce - 1) * per_sce + q("sce", "peak")
    # the end of the SCE's forward: its saved tensors and injection outputs, and its last block's transient
    sce_end = sce * (q("sce", "saved") + inj + out) + q("sce", "fwd") - q("sce", "saved")
    return {"saved": saved, "fwd": fwd, "top": top, "sce": sce_phase, "sce_end": sce_end, "per_sce_block": per_sce,
            "peak": max(fwd, top, sce_phase, sce_end)}


def per_gpu(facts: dict, act: dict, n: int, strategy: str, backbone_bytes: int = 2, encoders: bool = True) -> dict:
    """Per-GPU bytes: weights, encoders, trainable state, FSDP's gathered units and activations, phase by phase.

    ``replicated``: the backbone in bf16 on every GPU, each SCE block an FSDP2 unit, the SCE's other layers, the MPD
    and the task embeddings one unit each (``genprop/training/fsdp.py``). ``sharded``: the backbone's blocks sharded
    too (1/N of its weights, plus the running block and the prefetched next one gathered while G runs).
    ``+sce-unit``: the whole SCE one unit instead (its fp32 parameters gathered whole for its forward and again for
    its backward, where its unsharded gradients accumulate until the reduce-scatter; what the per-block units
    save, for the levers table). ``ddp``: everything replicated, backbone in
    fp32 (DDP does not cast it), gradients once more in DDP's buckets. ``encoders``: the worker holds the text and
    image encoders and the VAE it builds with the backbone (``build_backbone`` loads them; the step never runs them).
    """
    p_g, p_t, p_sce, blk, sce_blk = (facts[k] for k in ("backbone", "trainable", "sce", "block", "sce_block"))
    k = facts["sce_blocks"]
    enc = sum(facts["encoders"].values()) * (4 if strategy == "ddp" else 2) * encoders
    if strategy == "ddp":
        weights, state, gather_g = 4 * p_g, (STATE + 4) * p_t, 0
    elif strategy.startswith("replicated"):
        weights, state, gather_g = backbone_bytes * p_g, STATE * p_t / n, 0
    else:
        weights, state, gather_g = backbone_bytes * p_g / n, STATE * p_t / n, 2 * backbone_bytes * blk
    unit = strategy.endswith("+sce-unit")  # the SCE is one FSDP unit
    mpd_unit = 8 * facts["mpd"] if strategy != "ddp" else 0
    gather_sce_fwd = (4 * p_sce if unit else 8 * sce_blk) if strategy != "ddp" else 0
    phases = {"fwd": act["fwd"] + gather_g + mpd_unit / 2, "sce_fwd": act["sce_end"] + gather_sce_fwd,
              "top": act["top"] + gather_g + mpd_unit}
    # SCE block j's backward: blocks < j still saved, gradients of blocks >= j unsharded (one unit) or one block's
    sce_bwd = []
    for j in range(k - 1, -1, -1):
        a = act["sce"] - (k - 1 - j) * act["per_sce_block"]
        t = 4 * p_sce + 4 * (k - j) * sce_blk if unit else 12 * sce_blk
        sce_bwd.append(a + (t if strategy != "ddp" else 0))
    phases["sce"] = max(sce_bwd)
    phase = max(phases, key=phases.get)
    static = weights + enc + state
    return {"backbone": weights, "encoders": enc, "state": state, "activations": act["peak"],
            "transient": phases[phase] - act["peak"], "phase": phase, "total": static + phases[phase]}


def frames_over(coef, facts, height, width, strategy, n, limit=80 * GIB, frames=range(5, 402, 4)):
    """The first frame count (T = 1 mod 4) whose per-GPU memory with checkpointing exceeds ``limit``."""
    for f in frames:
        act = wan_activations(coef, wan_tokens(f, height, width), True)
        if per_gpu(facts, act, n, strategy)["total"] > limit:
            return f
    return None


# ------------------------------------------------------------------------------------------- time
def step_seconds(parts: dict, gpu: dict, sce_precision: str = "fp32") -> float:
    """Seconds per step at ``MFU`` of the GPU's peak: G and the MPD in bf16 (autocast), the SCE at
    ``sce_precision`` ("fp32": ``fp32_sce_under_autocast`` with PyTorch's default matmul precision, no TF32;
    "tf32": the same with ``torch.backends.cuda.matmul.allow_tf32``; "bf16": the SCE under autocast)."""
    rate = {"G": gpu["bf16"], "MPD": gpu["bf16"], "SCE": gpu[sce_precision]}
    return sum(sum(p.values()) / (MFU * rate[name]) for name, p in parts.items())


def mean_step_seconds(tr, sce, tokens, ckpt, gpu, precision, grad_every, mask_outputs) -> float:
    """Step time averaged over ``grad_every`` steps (L_grad's perturbed pass on one of them)."""
    with_p = step_seconds(genprop_step_flops(tr, sce, tokens, True, ckpt, mask_outputs=mask_outputs), gpu, precision)
    without = step_seconds(genprop_step_flops(tr, sce, tokens, False, ckpt, mask_outputs=mask_outputs), gpu,
                           precision)
    return (with_p + (grad_every - 1) * without) / grad_every


def context_parallel(tokens: int, dim: int, layers: int, sce: int, u: int, link: float) -> dict:
    """Bytes each GPU sends per step for degree-``u`` sequence parallelism over every self-attention of a
    checkpointed step (G's blocks, both SCE passes in fp32, the MPD), and the seconds at ``link`` bytes/s.

    Ulysses (heads split, sequence gathered, as DeepSpeed-Ulysses / xDiT): all-to-all of q, k, v and the output,
    each GPU sending (u - 1) / u of its L/u x D shard, in the forward, the recompute and, as gradients, the
    backward: 12 shard-sized messages per block that has a backward, 4 for G's block 0. Ring attention: K and V
    passed u - 1 times around the ring in the forward and the recompute, K, V and their gradients in the backward:
    8 (u - 1) K/V shards per block. Cross-attention needs none (its 769 context tokens are on every GPU).
    """
    shard = tokens / u * dim
    # bytes per element x messages per block: G's block 0 (forward only) and 1 .. L-1 and the MPD in bf16, the SCE's
    # blocks at batch 2 in fp32
    ulysses = 2 * (4 + 12 * (layers - 1) + 12) + 4 * 12 * 2 * sce
    ring = 2 * (2 + 8 * (layers - 1) + 8) + 4 * 8 * 2 * sce
    ulysses, ring = ulysses * shard * (u - 1) / u, ring * shard * (u - 1)
    return {"u": u, "ulysses_gb": ulysses / 1e9, "ring_gb": ring / 1e9, "ulysses_s": ulysses / link,
            "ring_s": ring / link}


