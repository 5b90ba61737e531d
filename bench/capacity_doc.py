"""The sections of docs/scale.md, from ``bench/plan_capacity.py``'s numbers (``plan_capacity.render``)."""

from __future__ import annotations

from capacity_model import GIB, GPU_COUNTS, MFU, STATE, STRATEGIES


def _t(head: list, rows: list) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]) + "\n"


def gib(b: float) -> str:
    return f"{b / GIB:.1f}"


def _b(n: float) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e7 else f"{n / 1e6:.2f} M"


def section_params(W: dict, S: dict) -> list:
    rows = []
    for name, key in (("denoiser G (frozen)", "backbone"), ("one block of G (largest, for SVD)", "block"),
                      ("SCE: N block copies + injection MLPs + fusion + task projection", "sce"),
                      ("MPD: copy of G's last block + head", "mpd")):
        rows.append([name, _b(W[key]), _b(S[key])])
    rows.append(["task embeddings", _b(W["trainable"] - W["sce"] - W["mpd"]), _b(S["trainable"] - S["sce"] - S["mpd"])])
    rows.append(["**trainable** (SCE + MPD + tasks)", _b(W["trainable"]), _b(S["trainable"])])
    rows.append(["condition encoders + VAE the training worker builds",
                 ", ".join(f"{k} {_b(v)}" for k, v in W["encoders"].items()),
                 ", ".join(f"{k} {_b(v)}" for k, v in S["encoders"].items())])
    rows.append(["G in bf16 / trainable state at 20 B per parameter (all GPUs together)",
                 f"{gib(2 * W['backbone'])} / {gib(STATE * W['trainable'])} GiB",
                 f"{gib(2 * S['backbone'])} / {gib(STATE * S['trainable'])} GiB"])
    return ["## 1. Parameters (meta device)\n",
            "Counted by `genprop.models.info.model_info` (`genprop model-info --json`: real-size configs built on the "
            "meta device, no weights; SVD's blocks cannot run there, counting does not run them); one block, the "
            "SCE depth the code builds and the encoders from the same meta-device modules. N is the default SCE "
            f"depth (`genprop.models.genprop_config.default_sce_blocks`): Wan {W['sce_blocks']} of 40 blocks "
            f"(num_layers // 4), SVD {S['sce_blocks']}; the shipped configs set the same.\n",
            _t(["", "Wan2.1 I2V 14B-480P", "SVD-XT"], rows)]


def _fit(c, tokens=32760, dim=5120) -> float:
    a, w, e = c
    return a * tokens * dim + w * dim + e * dim * dim


def section_memory(p: dict, W: dict, co: dict, mem: dict, lv: dict) -> list:
    ck = p["checks"]
    enc = sum(W["encoders"].values())
    build = 2 * (W["backbone"] + enc) + 4 * W["trainable"]  # bf16 frozen parts (build_model), fp32 trainable
    coef_rows = [[{"frozen": "G's block (bf16, frozen; batch 1)", "mpd": "MPD block (fp32 under bf16 autocast)",
                   "sce": "SCE block (fp32, autocast off; batch 2)"}[k]]
                 + [f"{co[k][q][0]:.1f}" for q in ("saved", "peak", "saved_ckpt", "peak_ckpt")]
                 + [" / ".join(f"{_fit(co[k][q]) / ck['blocks'][k]['real'][q]:.3f}" for q in ("saved", "peak_ckpt"))]
                 for k in ("frozen", "mpd", "sce")]
    step_rows = []
    for mode in ("ckpt", "no-ckpt"):
        s = ck["small_step"][mode]
        step_rows.append([f"scaled-down GenProp (2 heads x 128, 8 blocks, SCE 2), 17 x 128 x 128, {mode}, CPU",
                          f"{s['measured']['peak'] / 2**20:.0f} MiB", f"{s['composed']['peak'] / 2**20:.0f} MiB",
                          f"{s['composed']['peak'] / s['measured']['peak']:.3f}", s["measured"]["at"]])
    for key, r in ck.get("real_step", {}).items():
        f, mode = key.split("/")
        comp = mem[key]["activations"]["peak"]
        step_rows.append([f"Wan2.1 I2V 14B GenProp, {f} x 480 x 832, {mode}, fake tensors", f"{gib(r['peak'])} GiB",
                          f"{gib(comp)} GiB", f"{comp / r['peak']:.3f}", r["at"]])
    head = ["frames", "activations"] + [f"{s} / {n} GPUs" for s in STRATEGIES for n in GPU_COUNTS]
    tot_rows = [[f"{k.split('/')[0]} ({v['tokens']} tokens), {k.split('/')[1]}", gib(v["activations"]["peak"])]
                + [gib(v[f"{s}/{n}"]["total"]) for s in STRATEGIES for n in GPU_COUNTS] for k, v in mem.items()]
    br = []
    for row, key in (("G's weights", "backbone"), ("condition encoders + VAE (bf16)", "encoders"),
                     ("trainable state (20 B / parameter / N)", "state"), ("activations (peak phase)", "activations"),
                     ("FSDP's gathered units and unsharded gradients at that moment", "transient"),
                     ("**total**", "total")):
        br.append([row] + [gib(mem[f"81/{c}"][f"{s}/8"][key]) for s in STRATEGIES for c in ("ckpt", "no-ckpt")])
    br.append(["peak phase"] + [mem[f"81/{c}"][f"{s}/8"]["phase"] for s in STRATEGIES for c in ("ckpt", "no-ckpt")])
    lever_rows = [[name, gib(lv[49][i]), gib(lv[81][i])] for i, name in enumerate((
        "the whole SCE one FSDP unit (for comparison)", "as shipped (`strategy: fsdp`: an FSDP unit per SCE block)",
        "+ the worker does not hold UMT5, CLIP and the VAE", "+ G's blocks sharded too (`shard_backbone: true`)",
        "+ the SCE in bf16 (estimate)"))]
    a81 = mem["81/ckpt"]["activations"]
    return ["## 2. Per-GPU memory: Wan2.1 I2V 14B-480P GenProp\n",
            "**What a GPU holds at the step's peak.** G's weights: bf16, replicated (`shard_model` casts the "
            "backbone to bf16 and keeps it out of FSDP) or sharded per block (1/N of the weights, plus the running "
            "block and the prefetched next one gathered while G runs). The condition encoders and VAE: "
            "`build_model` builds the backbone with UMT5-XXL, CLIP and the VAE (`build_backbone`), `shard_model` casts "
            "them to bf16 with it, and the step never runs them (the shards hold their outputs). The trainable state: "
            "fp32 master weights, fp32 gradients, AdamW's two fp32 moments and the fp32 EMA (20 B per parameter), "
            "1/N each. FSDP's transients: each FSDP2 unit's full fp32 parameters while it runs and its unsharded "
            "gradients until its reduce-scatter; each SCE block is a unit of its own, so one block's parameters are "
            f"gathered at a time (the whole SCE as one unit would gather {gib(4 * W['sce'])} GiB for its forward and "
            "again for its backward, where its gradients accumulate too). Activations, by phase (below). The total is the largest phase: activations "
            "and the units gathered at that moment, plus the static part.\n",
            "**Activations: measured on scaled-down blocks, extrapolated** (`capacity_measure.wan_coefficients`). "
            "A diffusers `WanTransformerBlock` with the real head_dim 128, the real 769 context tokens (512 text + 257 "
            "image) and FFN 2.7 x width (13824 / 5120), at widths 128, 256 and 512 (1, 2, 4 heads) over latent "
            f"token grids 2x8x8 and 4x16x16 ({co['points']} runs), forward and backward on the CPU, for each kind of "
            "block a GenProp step runs: G's (bf16, frozen, input needing a gradient), the MPD's (fp32 weights under "
            "bf16 autocast, trained), the SCE's (fp32, autocast off as `fp32_sce_under_autocast` runs it, trained, "
            "batch 2: L_grad's clean and perturbed passes run as one batch). Two counts per run, with and without "
            "`torch.utils.checkpoint`: the bytes saved for backward (`saved_tensors_hooks`, each storage once, "
            "parameters and the shared context / modulation / RoPE tables excluded) and the peak of live bytes over "
            "forward and backward (a dispatch mode following every storage an op allocates until it is freed: "
            "output, output gradient, recompute and the backward's working set; parameter gradients freed on "
            "accumulation, as FSDP's reduce-scatter frees them). Attention is counted as a GPU's flash / "
            "memory-efficient kernels keep it: during the measurement SDPA is a function that saves q, k, v, the "
            "output and a fp32 logsumexp (B, heads, L), never the L x L matrix (this torch's CPU SDPA dispatches to "
            "its own flash kernel, which keeps the same; the meta device's math decomposition would keep the "
            "softmax matrix). Each quantity is fitted as bytes = a L D + c D + e D^2 (a per token and width, c the "
            "context's, e weight-sized tensors such as autocast's bf16 copies of the MPD's weights) and evaluated "
            "at D = 5120 and the real tokens L = (1 + (T - 1) / 4) (H / 16) (W / 16) (4x temporal and 8x spatial "
            "VAE, 1x2x2 patches: 480x832 x 81 frames = 21 x 30 x 52 = 32 760).\n",
            _t(["block", "a: saved (B per token per width)", "a: peak", "a: saved, checkpointed",
                "a: peak, checkpointed", "fit / real-size block at 32 760 tokens (saved / peak checkpointed)"],
               coef_rows),
            f"An SCE injection MLP (two fp32 D x D linears, trained) saves {co['inj']:.0f} B per token and width at "
            "batch 2 besides its input. The last column evaluates the fit at 32 760 tokens x 5120 against the same "
            "block counted at that size on fake tensors (`capacity_measure.fake_cpu`: meta-device shapes as CPU "
            "tensors, so CPU autocast and the fp32 SCE path run as on a GPU, with no memory and no compute).\n",
            "**The step, composed from the blocks** (`capacity_model.wan_activations`). The injections are added "
            "after G's blocks 0 .. 9, so the gradient to injection 0 flows back through G's blocks 1 .. 39, which "
            "keep their activations though frozen (input gradients only); G's block 0 has no input gradient and "
            "keeps nothing. The SCE's 10 blocks and injection MLPs run at batch 2 in fp32; each injection's output "
            "stays alive until G has used it, and in the backward its gradient (fp32, batch 2) waits until the SCE's "
            "turn, after the whole of G. The MPD runs on G's penultimate output. The phases: the end of the SCE's "
            "forward and of the whole forward; the first backward (G's last block or the MPD: every saved tensor "
            "plus that block's recompute and working set); the SCE's last block (the SCE's saved tensors, nine "
            "buffered injection gradients, one block recomputed at batch 2 in fp32). With checkpointing a block "
            "keeps only its input (2 B per token and width for G, 8 for the SCE); the un-checkpointed injection "
            "MLPs keep theirs. Checked against whole steps counted with the same instruments:\n",
            _t(["whole step", "measured peak", "composed", "composed / measured", "measured peak at"], step_rows),
            f"At 81 frames with checkpointing the phases are {gib(a81['sce_end'])} (end of the SCE's forward), "
            f"{gib(a81['fwd'])} (end of the forward), {gib(a81['top'])} (first backward) and {gib(a81['sce'])} GiB "
            "(the SCE's backward): the fp32 SCE at batch 2 sets the peak. The composition leaves out the patch "
            "embeddings, the output projection, the MPD head and the loss, which the whole-step counts include: at "
            "real size it is " + ", ".join(f"{1 - mem[k]['activations']['peak'] / r['peak']:.1%}"
                                           for k, r in ck.get("real_step", {}).items())
            + " below them (49 / 81 frames, with / without checkpointing). The tables use the composed figures.\n",
            "**Per-GPU memory (GiB), 480x832, batch 1**:\n", _t(head, tot_rows),
            "Where it goes, 81 frames on 8 GPUs (GiB):\n",
            _t(["", *[f"{s}, {c}" for s in STRATEGIES for c in ("ckpt", "no ckpt")]], br),
            "Strategies: " + "; ".join(f"**{k}**: {v}" for k, v in STRATEGIES.items()) + ".\n",
            "**What brings the shipped deployment under 80 GiB** (64 GPUs, checkpointing, GiB per GPU, cumulative):\n",
            _t(["change", "49 frames (wan.yaml)", "81 frames"], lever_rows),
            "The bf16 SCE row uses the MPD's coefficients (fp32 weights under bf16 autocast) at the SCE's batch; it "
            "gives up what `fp32_sce_under_autocast` protects (L_grad's finite difference in fp32).\n",
            f"**Before the first step**: `train_loop_per_worker` builds the model on the CPU with the frozen backbone, "
            f"its encoders and VAE loaded in bf16 (`build_model` with `backbone_dtype`: `from_pretrained(torch_dtype="
            f"torch.bfloat16)` under `strategy: fsdp` on GPUs) and the SCE, MPD and task embeddings in fp32, then "
            f"moves it with `model.to(device)` before `shard_model` shards the trainable parts: {gib(build)} GiB on the "
            f"GPU at that moment, on any N, and as much host memory per worker (8 workers per node: "
            f"{gib(8 * build)} GiB). Loaded in fp32 and cast afterwards it would be "
            f"{gib(4 * (W['backbone'] + W['trainable'] + sum(W['encoders'].values())))} GiB; not building the "
            f"encoders would bring it to {gib(2 * W['backbone'] + 4 * W['trainable'])} GiB.\n"]


def section_svd(p: dict, S: dict) -> list:
    sm = p["svd_memory"]
    rows = []
    for mode in ("ckpt", "no-ckpt"):
        r = sm[mode]
        rows.append([mode, gib(r["measured"]["saved"]), gib(r["measured"]["peak"])]
                    + [gib(r[f"{s}/{n}"]["total"]) for s in ("ddp", "replicated", "sharded") for n in GPU_COUNTS])
    head = ["", "saved at the end of the forward", "activation peak"] + [
        f"{s} / {n} GPUs" for s in ("ddp", "replicated", "sharded") for n in GPU_COUNTS]
    d = sm["ckpt"]["ddp/8"]
    return ["## 3. Per-GPU memory: SVD-XT GenProp, 576x1024 x 25 frames\n",
            "Counted at real size, not extrapolated: the whole GenProp step on SVD-XT's real U-Net "
            "(`capacity_measure.real_memory(\"svd\", ...)`) on fake CPU tensors, with the instruments of section 2 "
            "(flash-kernel accounting of attention, saved bytes, peak live bytes; G in bf16, SCE and MPD fp32, CPU "
            "bf16 autocast). Strategies: **ddp** (what `svd.yaml` runs: the model replicated, G in fp32 since DDP does "
            "not cast it, the trainable state whole plus DDP's gradient buckets), **replicated** and **sharded** as "
            "for Wan (G bf16). The activation peak is one number here (no phases), so FSDP's gathered SCE unit is "
            "added to it, an upper bound. GiB:\n",
            _t(head, rows),
            f"As shipped (ddp, 8 GPUs, checkpointing): G {gib(d['backbone'])}, encoders {gib(d['encoders'])}, "
            "trainable "
            f"state with DDP's buckets {gib(d['state'])}, activations {gib(d['activations'])} GiB. The peak is at "
            f"\"{sm['ckpt']['measured']['at']}\" with checkpointing (the block last entered when it was reached) and "
            f"\"{sm['no-ckpt']['measured']['at']}\" without. The project checkpoints SVD per U-Net block "
            "(`call_block` around whole down / up blocks), so the backward recomputes a whole block at once; the "
            "SCE's copies of the first down blocks run at 72 x 128 latents, 2 x 25 frames, in fp32. Checkpointing "
            "inside the blocks (per resnet / transformer layer, as diffusers' own U-Net does) or the SCE in bf16 "
            "would lower it; neither is measured here.\n"]


def section_time(p: dict, W: dict, ge: int) -> list:
    from capacity_model import GPUS, block_forward, wan_tokens

    fl, t = p["wan_flops"], p["wan_time"]
    rows = []
    for f in (49, 81):
        for part in ("G", "SCE", "MPD"):
            x = fl[f][True][part]
            rows.append([f, part, *(f"{x[q] / 1e12:.0f}" for q in ("fwd", "bwd", "recompute")),
                         f"{sum(x.values()) / 1e12:.0f}"])
        tot = {pt: sum(sum(v.values()) for v in fl[f][pt].values()) for pt in (True, False)}
        rows.append([f, "**step**", "", "", "", f"{tot[True] / 1e12:.0f} with L_grad, {tot[False] / 1e12:.0f} "
                     f"without, {(tot[True] + (ge - 1) * tot[False]) / ge / 1e12:.0f} mean"])
    checks = [[c["config"], f"{c['analytic'] / 1e12:.4g}", f"{c['counted'] / 1e12:.4g}",
               f"{c['analytic'] / c['counted'] - 1:+.3%}"] for c in p["checks"]["flops"]]
    trow = [[f, g, *(f"{t[f'{f}/{g}/{q}']:.1f} s ({1 / t[f'{f}/{g}/{q}']:.3f})" for q in ("fp32", "tf32", "bf16"))]
            for f in (49, 81) for g in GPUS]
    sv = p["svd_flops"]
    svd_t = {g: ((sv["rest"] + sv["rest_fwd"]) / r["bf16"] + (sv["sce"] + sv["sce_fwd"]) / r["fp32"]) / MFU
             for g, r in GPUS.items()}
    comm = {n: 3 * 4 * W["trainable"] * (n - 1) / n for n in GPU_COUNTS}
    gcomm = {n: 2 * 2 * W["backbone"] * (n - 1) / n for n in GPU_COUNTS}
    return ["## 4. FLOPs and step time\n",
            "FLOPs per step (`capacity_model.genprop_step_flops`), counted analytically per block: self-attention "
            "projections and cross-attention q / out 12 L D^2, FFN 4 L D F, cross-attention k / v on 512 text and "
            "add_k / add_v on 257 image tokens 4 x 769 D^2, attention 4 L^2 D (QK^T and AV) + 4 L x 769 x D; "
            "Wan2.1 14B: D = 5120, F = 13824, 40 blocks, 40 heads (`WanBackboneConfig()`); plus the condition "
            "embedder, patch embeddings, output projection, the SCE's fusion and injection MLPs and the MPD head. "
            "Backward: a GEMM costs one forward per gradient it produces (input, weight), so G's frozen blocks cost "
            "about 1x forward (input gradients only; G's block 0, whose input needs no gradient, none) and trained "
            "blocks 2x; attention's backward is counted as the fused kernels run it (2.5x forward: scores "
            "recomputed, dQ, dK, dV). Checkpointing recomputes each block that has a backward (+1 forward). The "
            "SCE runs twice on steps with L_grad (batch 2). Checked against `FlopCounterMode` on the meta device "
            "(no checkpointing; the meta device runs attention as two bmm, so the check counts its backward as one "
            "bmm per needed gradient):\n",
            _t(["config", "analytic TFLOP", "FlopCounterMode TFLOP", "difference"], checks),
            "TFLOP per step, 480x832, checkpointing, batch 1 (the parts: a step with L_grad):\n",
            _t(["frames", "part", "forward", "backward", "recompute", "total"], rows),
            f"Seconds per step per GPU at {MFU:.0%} of peak (dense bf16 312 / 989, TF32 156 / 494.5, FP32 19.5 / 66.9 "
            f"TFLOP/s, A100 / H100 SXM), mean over `grad_every: {ge}` (L_grad on one step of {ge}), G and the MPD in "
            "bf16; in brackets samples/s per GPU. The SCE's precision decides it: **fp32** is `fp32_sce_under_autocast: "
            "true` with `train.tf32: false` (PyTorch's default, TF32 off); **TF32** is what the code runs "
            "(`train.tf32: true`, the default: `torch.backends.cuda.matmul.allow_tf32`, fp32 storage on TF32 tensor "
            "cores); **bf16** is `fp32_sce_under_autocast: false`:\n",
            _t(["frames", "GPU", "SCE fp32", "SCE TF32 (as shipped)", "SCE bf16"], trow),
            "The TF32 column assumes the SCE's attention runs on tensor cores too; self-attention is "
            + " and ".join(f"{a['self_attn'] / sum(a.values()):.0%}" for a in (
                block_forward(wan_tokens(f, 480, 832), 5120, 13824) for f in (49, 81)))
            + " of a block's forward FLOPs at 49 / 81 frames, and PyTorch's fp32 SDPA (the memory-efficient kernel; "
            "flash kernels take no fp32) may run it on CUDA cores, so read the TF32 times as lower bounds.\n",
            "Throughput of N GPUs is N times the per-GPU figure when communication hides behind compute. Per step "
            "and GPU, FSDP moves the trainable parameters three times (all-gather for the SCE's forward and "
            "backward, reduce-scatter of the gradients): "
            + ", ".join(f"{comm[n] / 1e9:.0f} GB at N = {n}" for n in GPU_COUNTS)
            + f" ({comm[64] / GPUS['A100 80GB']['network']:.1f} s at 25 GB/s per GPU, "
            f"{comm[64] / GPUS['H100 80GB']['network']:.1f} s at 50 GB/s); sharding G adds two all-gathers of its "
            f"bf16 weights, {gcomm[64] / 1e9:.0f} GB at N = 64. Both overlap with the blocks' compute when FSDP "
            "prefetches.\n",
            f"SVD-XT, 25 x 576 x 1024 (FlopCounterMode on fake tensors, math attention): "
            f"{sv['counts']['perturbed/fwd+bwd'] / 1e12:.0f} TFLOP per step with L_grad, "
            f"{sv['counts']['plain/fwd+bwd'] / 1e12:.0f} without; the SCE's two passes (the difference, doubled) "
            f"{sv['sce'] / 1e12:.0f}. With checkpointing (+ one forward, an upper bound) at {MFU:.0%}, the SCE in "
            f"fp32: {svd_t['A100 80GB']:.0f} s per step on an A100, {svd_t['H100 80GB']:.0f} s on an H100.\n"]


def section_paper(p: dict, ge: int) -> list:
    from capacity_model import GPUS

    out = ["## 5. GPU-hours at the paper's data scale\n",
           "The paper (Sec. 4.1) trains its DiT on YouTube-VOS, SA-V and an internal set at 360p with 32, 64 and 128 "
           "frames on 32 / 64 A100s and gives no step count or batch, so steps and global batch are this table's "
           "parameters. Clips: 360p as 352 x 640 (Wan needs multiples of 16), 32 / 64 / 128 frames padded to 33 / "
           "65 / 129 (T = 1 mod 4, as `pad_frames` does). GPU-hours = steps x global batch x seconds per sample "
           f"(section 4: batch 1 per GPU, checkpointing, mean over `grad_every: {ge}`); days = GPU-hours / global "
           "batch / 24 on as many GPUs as the global batch. The memory column is per GPU with checkpointing and G "
           "sharded (the smaller strategy of section 2) at N = 32 / 64.\n"]
    for g in GPUS:
        rows = []
        for f, v in p["paper"].items():
            for gb in (32, 64):
                cells = [f"{s * gb * v[f'{g}/{q}'] / 3600:,.0f} ({s * v[f'{g}/{q}'] / 3600 / 24:.1f} d)"
                         for s in (10000, 20000, 50000) for q in ("fp32", "tf32")]
                over = " (over 80: section 7)" if v["memory"][gb] > 80 * GIB else ""
                rows.append([f"{f} ({v['tokens']} tokens)", gb, *cells, gib(v["memory"][gb]) + over])
        out += [f"**{g}**, GPU-hours (days):\n", _t(["frames", "global batch"] + [
            f"{s // 1000}k steps, SCE {q}" for s in (10000, 20000, 50000) for q in ("fp32", "TF32")]
            + ["GiB per GPU"], rows)]
    return out


def section_shards(p: dict, dw: dict) -> list:
    from capacity_model import GPUS

    rows = []
    for f, v in p["shards"].items():
        vae = 3 * v["vae"] + v["vae_1"]
        txt = 2 * v["umt5"] + v["clip"]
        for g, r in GPUS.items():
            s = (vae / r["tf32"] + txt / r["fp32"]) / MFU
            s16 = (vae + txt) / r["bf16"] / MFU
            rows.append([f, f"{v['vae'] / 1e12:.1f}", f"{(vae + txt) / 1e12:.0f}", g, f"{s:.1f}",
                         f"{s * 1e4 / 3600:.0f}", f"{s16 * 1e4 / 3600:.0f}"])
    v = p["shards"][129]
    samples = (3471 + 50900) * dw["clips_per_video"]
    hours = {g: samples * ((3 * v["vae"] + v["vae_1"]) / r["tf32"] + (2 * v["umt5"] + v["clip"]) / r["fp32"]) / MFU
             / 3600 for g, r in GPUS.items()}
    return ["## 6. The shard job\n",
            "Per training sample the shard job (`genprop/shards/encode.py`) runs the Wan VAE encoder three times on a "
            "whole clip (the SCE's source video, the target, and G's condition video: the first frame followed by "
            "zeros, `encode_condition`), once on the first frame alone, UMT5-XXL twice on 512 tokens (the prompt and "
            "the empty negative prompt) and CLIP ViT-H/14 once on the 224 x 224 first frame. FLOPs counted by "
            "FlopCounterMode on a real-size `AutoencoderKLWan` on the meta device (1 frame: "
            f"{v['vae_1'] / 1e12:.2f} TFLOP, growing by about {(v['vae'] - v['vae_1']) / 128 * 4 / 1e12:.2f} per "
            "4-frame chunk of its causal encoder) and real-size UMT5 / CLIP on fake tensors "
            f"({v['umt5'] / 1e12:.2f} and {v['clip'] / 1e12:.2f} TFLOP). Time at {MFU:.0%} as the job runs them: "
            "fp32 modules (`SampleEncoder` casts nothing), so the VAE's convolutions use TF32 (cuDNN's default) and "
            "UMT5 / CLIP plain fp32 matmuls; the last column runs all of it in bf16. Decoding, augmentation and "
            "writing run on CPUs (docs/benchmarks.md) and are not counted.\n",
            _t(["frames (352 x 640)", "VAE TFLOP per clip", "TFLOP per sample", "GPU", "s per sample",
                "GPU-hours per 10 000 samples", "the same in bf16"], rows),
            f"With `clips_per_video: {dw['clips_per_video']}` (wan.yaml), YouTube-VOS's 3 471 training videos make "
            f"{3471 * dw['clips_per_video']:,} samples and SA-V's 50.9 K videos (as published) about "
            f"{50900 * dw['clips_per_video']:,}: at 129 frames "
            + ", ".join(f"{h:,.0f} GPU-hours on {g}s" for g, h in hours.items()) + " for both. Encoding a sample costs "
            + ", ".join(f"{(3 * x['vae'] + x['vae_1'] + 2 * x['umt5'] + x['clip']) / p['paper'][f]['flops']:.1%}"
                        for f, x in p["shards"].items())
            + " of one training step's FLOPs on it (33 / 65 / 129 frames), paid once per sample.\n"]


def section_beyond(p: dict) -> list:
    lim, cp, fixed = p["limits"], p["context_parallel"], p["fixed"]
    rows = [[res.replace("x", " x "), s, *(lim[f"{res}/{s}/{n}"] or "> 401" for n in (8, 64))]
            for res in ("480x832", "720x1280") for s in STRATEGIES]
    crow = []
    for key, v in cp.items():
        cfg, s = key.split("/")
        for g in ("A100 80GB", "H100 80GB"):
            c = v[g]
            crow.append([cfg.replace("x", " x ", 2), s, v["tokens"], v["u"] or "> 64", g,
                         f"{c['ulysses_gb']:.0f} GB, {c['ulysses_s']:.2f} s",
                         f"{c['ring_gb']:.0f} GB, {c['ring_s']:.2f} s",
                         f"{c['compute_fp32_s']:.0f} / {c['compute_bf16_s']:.0f} s"])
    return ["## 7. Beyond 80 GB: frame counts, 720p and context parallelism\n",
            "Frame count (T = 1 mod 4) at which the per-GPU memory with checkpointing first exceeds 80 GiB:\n",
            _t(["resolution", "strategy", "8 GPUs", "64 GPUs"], rows),
            "What does not depend on the clip (weights, encoders, state, FSDP's gathered units with their gradients) "
            "at 64 GPUs: " + ", ".join(f"{k} {gib(v)} GiB" for k, v in fixed.items()) + "; with the backbone "
            "replicated that leaves almost nothing for activations. FSDP shards state, never activations: past "
            "these frame counts more GPUs do not help.\n",
            "**Context (sequence) parallelism, a plan.** Activations scale with the tokens of one clip, so beyond "
            "these "
            "frame counts a clip has to be split across GPUs. Ulysses (DeepSpeed-Ulysses, as xDiT does for Wan): every "
            "block runs on L/u tokens; around self-attention an all-to-all turns the sequence split into a head split "
            "(u divides Wan's 40 heads and stays inside an 8-GPU NVLink node: 2, 4 or 8) and back. Ring attention: K / V "
            "shards travel around u GPUs while each computes its queries' attention (any u, across nodes, more "
            "bytes; beyond 8, Ulysses inside a node times a ring across nodes). Cross-attention needs nothing (the 769 context tokens are on every GPU). Degree needed for 80 GiB "
            "(activations / u, the rest unchanged, 64 GPUs) and the bytes each GPU sends per step for it (G's 40 "
            "blocks bf16, the SCE's 10 at batch 2 in fp32, the MPD; forward, recompute and backward), at NVLink speed "
            "(300 / 450 GB/s per direction), against the step's compute per GPU (SCE fp32 / bf16):\n",
            _t(["clip", "strategy", "tokens", "degree u", "GPU", "Ulysses per GPU per step", "ring", "compute"], crow),
            "Communication is a small fraction of compute at these lengths (attention's FLOPs grow as L^2, its traffic "
            "as L). What it would take in genprop: diffusers 0.42 already routes Wan's self-attention through "
            "`dispatch_attention_fn` with a `ContextParallelConfig(ulysses_degree, ring_degree)`, but its hooks split "
            "the sequence at the transformer's `forward`, while the Wan adapter runs G's blocks one by one "
            "(`trunk`, `run_encoder_block`); so the adapter has to split the tokens after `embed` (G's and the SCE's "
            "alike: the injections are token-aligned and add shard to shard), slice the RoPE tables per rank, keep "
            "the condition embedder's outputs whole, and gather before `proj_out`, the MPD head and the loss (or "
            "all-reduce the per-region sums of L_mask, L_non-mask, L_grad and L_MPD). The data-parallel degree "
            "becomes N / u; FSDP still shards the state over all N.\n",
            "## What this plan does not measure\n",
            "- GPU-side allocator effects: the CUDA caching allocator's fragmentation and rounding, cuBLAS / "
            "attention workspaces, NCCL buffers and the CUDA context (leave a few GiB of headroom).\n",
            "- CUDA autocast's op lists differ in details from CPU autocast's, under which the blocks were measured.\n",
            "- Real utilisation: 40 % is an assumption, the same for bf16, TF32 and fp32 parts; measure one step on "
            "the target GPU and rescale (every time here is FLOPs / (MFU x peak)).\n",
            "- SVD's activations are counted at real size only, not extrapolated from scaled-down U-Nets, and its "
            "time counts recompute as one whole forward.\n",
            "- The data path (decoding and prefetching shards on the CPUs), checkpoint writes and validation "
            "sampling; the training workers' host memory beyond the model they build.\n"]
