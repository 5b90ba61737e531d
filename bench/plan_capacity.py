"""Capacity plan for training GenProp on a GPU cluster: per-GPU memory, step time, GPU-hours, the shard job.

    python bench/plan_capacity.py --out docs/scale.md [--json PATH] [--quick] [--no-real-check]

Parameter counts come from the meta device (``genprop.models.info.model_info``); activation memory from
scaled-down Wan blocks measured on the CPU and extrapolated (``capacity_measure``), checked against whole steps
counted on fake tensors at real size; FLOPs from the analytic count, checked against
``FlopCounterMode`` (``capacity_model``). ``plan()`` returns every number; ``capacity_doc.render()`` writes the
document. No GPU is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import capacity_measure as cm  # noqa: E402
import capacity_model as cf  # noqa: E402
import torch  # noqa: E402
from capacity_model import (GIB, GPU_COUNTS, GPUS, MFU, STRATEGIES, context_parallel,  # noqa: E402
                            frames_over, mean_step_seconds, per_gpu, wan_activations)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# stable-video-diffusion-img2vid-xt vae/config.json (``SVDBackboneConfig.vae = {}`` builds diffusers' smaller default)
SVD_XT_VAE = dict(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
                  layers_per_block=2, latent_channels=4)


def deployment(name: str) -> dict:
    """The shipped ``jobs/configs/<name>.yaml``: clip shape and the train section's parallelism settings."""
    import yaml

    with open(os.path.join(HERE, "jobs", "configs", f"{name}.yaml")) as f:
        cfg = yaml.safe_load(f)
    tr, sh = cfg["train"], cfg["shards"]
    per_gpu_batch = tr.get("global_batch_size", 0) // (tr["num_workers"] * tr["train"].get("grad_accum", 1))
    return {"frames": sh["frames"], "height": sh["height"], "width": sh["width"],
            "batch": per_gpu_batch or tr.get("batch_size", 1),
            "workers": tr["num_workers"], "strategy": tr.get("strategy", "ddp"),
            "shard_backbone": tr.get("shard_backbone", False),
            "checkpointing": tr["train"].get("gradient_checkpointing", False),
            "grad_every": tr["train"].get("loss", {}).get("grad_every", 1), "sce_blocks": tr["model"].get("sce_blocks"),
            "encode_actors": sh.get("encode_actors"), "clips_per_video": sh.get("clips_per_video")}


def _n(module) -> int:
    return sum(p.numel() for p in module.parameters())


def wan_facts() -> dict:
    """Parameter counts of Wan2.1 I2V 14B GenProp (meta device): model_info plus one block, the head's width and
    the frozen encoders the training worker builds beside the denoiser."""
    from diffusers import AutoencoderKLWan
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    from genprop.models.backbones.wan_config import WAN_I2V_14B, WanBackboneConfig
    from genprop.models.info import model_info

    info = model_info("wan")
    with torch.device("meta"):
        model = cm.wan_genprop(dict(WAN_I2V_14B), None, device="meta", bf16_backbone=False)
        cfg = WanBackboneConfig()
        enc = {"UMT5-XXL": _n(UMT5EncoderModel(UMT5Config(**cfg.text_encoder))),
               "CLIP ViT-H/14": _n(CLIPVisionModel(CLIPVisionConfig(**cfg.image_encoder))),
               "VAE": _n(AutoencoderKLWan(**cfg.vae))}
    return {**info, "block": _n(model.backbone.transformer.blocks[0]), "sce_blocks": len(model.sce.blocks),
            "sce_block": _n(model.sce.blocks[0]) + _n(model.sce.injections[0]), "transformer": dict(WAN_I2V_14B),
            "mask_outputs": model.mpd.head[-1].out_features, "encoders": enc}


def svd_facts() -> dict:
    """Parameter counts of SVD-XT GenProp (meta device): model_info plus its largest U-Net block and encoders."""
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from genprop.models.backbones import SVDBackboneConfig
    from genprop.models.info import model_info

    info = model_info("svd")
    with torch.device("meta"):
        model = cm.svd_genprop(bf16_backbone=False)
        u = model.backbone.unet
        clip = CLIPVisionConfig(**SVDBackboneConfig().image_encoder)
        enc = {"CLIP ViT-H/14": _n(CLIPVisionModelWithProjection(clip)),
               "VAE": _n(AutoencoderKLTemporalDecoder(**SVD_XT_VAE))}
    blocks = [*u.down_blocks, u.mid_block, *u.up_blocks]
    return {**info, "block": max(_n(b) for b in blocks), "sce_blocks": len(model.sce.blocks),
            "sce_block": max(_n(b) for b in model.sce.blocks), "encoders": enc}


# ------------------------------------------------------------------------------------------- the plan
def plan(quick: bool = False, real_check: bool = True) -> dict:
    """Every number of the document. ``quick``: fewer scaled-down points and no checks at real size."""
    torch.set_num_threads(1)
    wan, svd = wan_facts(), svd_facts()
    dep = {"wan": deployment("wan"), "svd": deployment("svd")}
    coef = cm.wan_coefficients(heads=(1, 2), grids=((2, 8, 8), (2, 16, 16))) if quick else cm.wan_coefficients()
    tr, k, mo = wan["transformer"], wan["sce_blocks"], wan["mask_outputs"]
    D, layers = tr["num_attention_heads"] * tr["attention_head_dim"], tr["num_layers"]
    out = {"wan": wan, "svd": svd, "deployment": dep, "coefficients": coef, "checks": {}, "gpus": GPUS, "mfu": MFU}
    # 1. memory: Wan at 480x832 x 49 / 81 frames
    mem = out["wan_memory"] = {}
    for frames in (49, 81):
        tokens = cf.wan_tokens(frames, 480, 832)
        for ckpt in (True, False):
            act = wan_activations(coef, tokens, ckpt, layers, k, D)
            mem[f"{frames}/{'ckpt' if ckpt else 'no-ckpt'}"] = {
                "tokens": tokens, "activations": act,
                **{f"{s}/{n}": per_gpu(wan, act, n, s) for s in STRATEGIES for n in GPU_COUNTS}}
    # 2. checks of the activation model and the FLOP formula
    small = cm.small_wan(2, 8)
    with torch.device("meta"):
        small_mo = cm.wan_genprop(small, 2, device="meta", bf16_backbone=False).mpd.head[-1].out_features
    small_flops = cf.genprop_step_flops(small, 2, cf.wan_tokens(17, 128, 128), attention="math", mask_outputs=small_mo)
    fl = out["checks"]["flops"] = [{"config": "scaled-down Wan (2 heads x 128, 8 blocks, SCE 2), 17 x 128 x 128",
                                    "counted": cf.counted_step_flops(small, 2, 17, 128, 128),
                                    "analytic": cf.total(small_flops)}]
    if not quick:
        fl.append({"config": "Wan2.1 I2V 14B, 17 x 480 x 832", "counted": cf.counted_step_flops(tr, k, 17, 480, 832),
                   "analytic": cf.total(cf.genprop_step_flops(tr, k, cf.wan_tokens(17, 480, 832), attention="math",
                                                              mask_outputs=mo))})
        model = cm.wan_genprop(small, 2)
        batch = cm.wan_batch(model, 17, 128, 128)
        out["checks"]["small_step"] = {
            ("ckpt" if c else "no-ckpt"): {"measured": cm.step_memory(model, batch, c),
                                           "composed": wan_activations(coef, 320, c, 8, 2, 256)} for c in (True, False)}
        out["checks"]["blocks"] = {kind: {"fit": coef[kind], "real": cm.wan_block_profile(
            D, tr["ffn_dim"], tr["num_attention_heads"], (21, 30, 52), kind, 2 if kind == "sce" else 1, fake=True)}
            for kind in ("frozen", "mpd", "sce")}
    if real_check and not quick:
        out["checks"]["real_step"] = {f"{f}/{'ckpt' if c else 'no-ckpt'}": cm.real_memory("wan", f, 480, 832, c)
                                      for f in (49, 81) for c in (True, False)}
    # 4. FLOPs and step time, Wan
    ge = dep["wan"]["grad_every"]
    out["wan_flops"] = {f: {p: cf.genprop_step_flops(tr, k, cf.wan_tokens(f, 480, 832), p, True, mask_outputs=mo)
                            for p in (True, False)} for f in (49, 81)}
    out["wan_time"] = {f"{f}/{g}/{prec}": mean_step_seconds(tr, k, cf.wan_tokens(f, 480, 832), True, GPUS[g], prec,
                                                           ge, mo)
                       for f in (49, 81) for g in GPUS for prec in ("fp32", "tf32", "bf16")}
    # 5. the paper's scale: 360p (352 x 640, multiples of 16) x 32 / 64 / 128 frames (padded to 33 / 65 / 129)
    out["paper"] = {f: {"tokens": cf.wan_tokens(f, 352, 640), "flops": (lambda tk: sum(
        cf.total(cf.genprop_step_flops(tr, k, tk, pt, True, mask_outputs=mo)) for pt in (True, False)) / 2)(
        cf.wan_tokens(f, 352, 640)), **{f"{g}/{prec}": mean_step_seconds(
        tr, k, cf.wan_tokens(f, 352, 640), True, GPUS[g], prec, ge, mo) for g in GPUS for prec in ("fp32", "tf32")},
        "memory": {n: per_gpu(wan, wan_activations(coef, cf.wan_tokens(f, 352, 640), True, layers, k, D), n,
                              "sharded")["total"] for n in (32, 64)}} for f in (33, 65, 129)}
    # 7. what brings the shipped deployment (wan.yaml: 64 GPUs, checkpointing) under 80 GB, cumulatively
    out["levers"] = {f: [per_gpu(wan, wan_activations(coef, cf.wan_tokens(f, 480, 832), True, layers, k, D,
                                                      bf16_sce=b16), 64, s, encoders=e)["total"]
                         for s, e, b16 in (("replicated+sce-unit", True, False), ("replicated", True, False),
                                           ("replicated", False, False), ("sharded", False, False),
                                           ("sharded", False, True))] for f in (49, 81)}
    # 8. beyond 80 GB
    out["limits"] = {f"{h}x{w}/{s}/{n}": frames_over(coef, wan, h, w, s, n)
                     for h, w in ((480, 832), (720, 1280)) for s in STRATEGIES for n in (8, 64)}
    cp = out["context_parallel"] = {}
    zero = dict.fromkeys(("fwd", "top", "sce", "sce_end", "per_sce_block", "peak"), 0.0)
    out["fixed"] = {s: per_gpu(wan, zero, 64, s)["total"] for s in STRATEGIES}
    for frames, h, w in ((81, 480, 832), (81, 720, 1280), (129, 720, 1280)):
        tokens = cf.wan_tokens(frames, h, w)
        act = wan_activations(coef, tokens, True, layers, k, D)
        for s in STRATEGIES:
            u = next((u for u in (1, 2, 4, 8, 16, 32, 64) if per_gpu(
                wan, {q: v / u for q, v in act.items()}, 64, s)["total"] <= 80 * GIB), None)
            cp[f"{frames}x{h}x{w}/{s}"] = {"tokens": tokens, "u": u, **{name: context_parallel(
                tokens, D, layers, k, u or 8, g["nvlink"]) | {f"compute_{prec}_s": mean_step_seconds(
                    tr, k, tokens, True, g, prec, ge, mo) / (u or 8) for prec in ("fp32", "bf16")}
                for name, g in GPUS.items()}}
    if quick:
        return out
    # 9. SVD-XT at 576x1024 x 25: counted at real size on fake tensors
    out["svd_memory"] = {}
    for ckpt in (True, False):
        r = cm.real_memory("svd", 25, 576, 1024, ckpt)
        act = dict.fromkeys(("fwd", "top", "sce", "sce_end", "peak"), r["peak"]) | {"per_sce_block": 0.0}
        out["svd_memory"]["ckpt" if ckpt else "no-ckpt"] = {"measured": r, **{
            f"{s}/{n}": per_gpu(svd, act, n, s) for s in ("ddp", "replicated", "sharded") for n in GPU_COUNTS}}
    # FLOPs: with / without the perturbed pass, forward + backward / forward only; their differences are one SCE pass
    c = {(pt, bw): cf.svd_step_flops(25, 576, 1024, pt, bw) for pt in (True, False) for bw in (True, False)}
    sce, sce_f = 2 * (c[True, True] - c[False, True]), 2 * (c[True, False] - c[False, False])
    out["svd_flops"] = {"counts": {f"{'perturbed' if a else 'plain'}/{'fwd+bwd' if b else 'fwd'}": v
                                   for (a, b), v in c.items()}, "sce": sce, "sce_fwd": sce_f,
                        "rest": c[True, True] - sce, "rest_fwd": c[True, False] - sce_f}
    # 10. the shard job per clip: 3 VAE encodes (SCE source, target, G's condition video), the first frame's
    # latents, UMT5 on the prompt and the empty negative prompt, CLIP on the first frame
    enc = {"umt5": cf.umt5_flops(), "clip": cf.clip_flops(), "vae_1": cf.vae_encode_flops(1, 352, 640)}
    out["shards"] = {f: {"vae": cf.vae_encode_flops(f, 352, 640), **enc} for f in (33, 65, 129)}
    return out






# ------------------------------------------------------------------------------------------- the document
def render(p: dict, command: str, machine: str) -> str:
    """docs/scale.md from :func:`plan`'s numbers (a full plan, not ``quick``): the summary here, the sections from
    ``capacity_doc``."""
    from capacity_doc import (gib, section_beyond, section_memory, section_paper, section_params, section_shards,
                             section_svd, section_time)

    W, S, dep, mem, co = p["wan"], p["svd"], p["deployment"], p["wan_memory"], p["coefficients"]
    dw, ds, ge = dep["wan"], dep["svd"], dep["wan"]["grad_every"]
    m81 = mem["81/ckpt"]
    tot = lambda key, st, n: gib(mem[key][f"{st}/{n}"]["total"])  # noqa: E731
    a100, h100 = "A100 80GB", "H100 80GB"
    t = p["wan_time"]
    pap = p["paper"][129]
    gh = 20000 * 64 * pap[f"{h100}/tf32"] / 3600
    enc_n = sum(W["encoders"].values())
    build = 2 * (W["backbone"] + enc_n) + 4 * W["trainable"]  # bf16 frozen parts, fp32 trainable ones
    lv = p["levers"]
    L = ["# Capacity plan: training GenProp on a GPU cluster\n",
         f"Command: `{command}` (`bench/plan_capacity.py` with `bench/capacity_measure.py`, "
         "`bench/capacity_model.py` and `bench/capacity_doc.py`; raw numbers: the same command's `--json`). "
         f"Machine: {machine}. Date: "
         "2026-12-02. Nothing here ran on a GPU: parameters are counted on the meta device, activation memory is "
         "measured on tensors (scaled-down blocks on the CPU, whole steps on fake tensors), time is counted FLOPs at "
         f"a stated utilisation ({MFU:.0%} of each GPU's dense peak, the same for every part).\n",
         "Units: GiB = 2^30 bytes (an \"80 GB\" A100 or H100 holds 80 GiB). Batch 1 clip per GPU, as both shipped "
         f"configs (`jobs/configs/wan.yaml`: {dw['frames']} frames at {dw['height']}x{dw['width']}, "
         f"{dw['workers']} workers, `strategy: {dw['strategy']}`, gradient checkpointing "
         f"{'on' if dw['checkpointing'] else 'off'}, `grad_every: {ge}`; `svd.yaml`: {ds['frames']} frames at "
         f"{ds['height']}x{ds['width']}, {ds['workers']} workers, `strategy: {ds['strategy']}`, checkpointing "
         f"{'on' if ds['checkpointing'] else 'off'}). Memory is the peak of a step with L_grad's perturbed SCE pass "
         "(`grad_every` lowers the mean cost, not the peak).\n",
         "## Summary\n",
         f"- **Wan2.1 I2V 14B, 81 frames at 480x832, 8 GPUs, per GPU**: backbone replicated (`strategy: fsdp`) "
         f"{tot('81/ckpt', 'replicated', 8)} GiB with checkpointing, {tot('81/no-ckpt', 'replicated', 8)}"
         f" GiB without; backbone sharded (`shard_backbone: true`) {tot('81/ckpt', 'sharded', 8)} / "
         f"{tot('81/no-ckpt', 'sharded', 8)} GiB. None fits an 80 GiB GPU: the activations alone are "
         f"{gib(m81['activations']['peak'])} GiB with checkpointing; context parallelism of degree "
         f"{p['context_parallel']['81x480x832/sharded']['u']} (sharded, 64 GPUs) brings it under (section 7).\n",
         f"- **The shipped `wan.yaml` fits on 80 GB GPUs because it shards the backbone**: {dw['frames']} frames on "
         f"{dw['workers']} GPUs need {gib(lv[49][1])} GiB per GPU with the backbone replicated ({gib(lv[49][0])} "
         f"with the whole SCE one FSDP unit) and {tot('49/ckpt', 'sharded', 64)} GiB with it sharded, what "
         f"`wan.yaml` sets (`shard_backbone: {str(dw['shard_backbone']).lower()}`). Not loading the condition "
         f"encoders and VAE on the training workers, sharding the backbone and running the SCE in bf16 bring the "
         f"replicated figure to {gib(lv[49][2])}, {gib(lv[49][3])} and {gib(lv[49][4])} GiB (cumulative, "
         f"section 2). "
         f"While it starts, a worker holds the model whole before `shard_model` shards the trainable parts: "
         f"{gib(build)} GiB, as `build_model` loads the frozen backbone and encoders in bf16 "
         f"(`from_pretrained(torch_dtype=...)`, `pipelines.train_worker.backbone_dtype`) and the SCE and MPD in "
         f"fp32.\n",
         f"- **Step time, {dw['frames']} frames**, mean over `grad_every: {ge}`: {t[f'49/{a100}/tf32']:.0f} s on an "
         f"A100 and {t[f'49/{h100}/tf32']:.0f} s on an H100 as shipped (the SCE in fp32 storage on TF32 matmuls: "
         f"`fp32_sce_under_autocast`, `train.tf32`), {t[f'49/{a100}/fp32']:.0f} s / {t[f'49/{h100}/fp32']:.0f} s "
         f"in full fp32 (`tf32: false`), {t[f'49/{a100}/bf16']:.0f} s / {t[f'49/{h100}/bf16']:.0f} s with the SCE in "
         f"bf16.\n",
         f"- **GPU-hours, example**: the paper's longest clips (128 frames at 360p, padded to 129 at 352x640), "
         f"20 000 steps at global batch 64 on H100s with TF32: {gh:,.0f} GPU-hours ({gh / 64 / 24:.1f} days on 64 "
         f"GPUs, as shipped); in full fp32 {20000 * 64 * pap[f'{h100}/fp32'] / 3600:,.0f}.\n",
         f"- **SVD-XT, 25 frames at 576x1024** as shipped (`ddp`, checkpointing): "
         f"{gib(p['svd_memory']['ckpt']['ddp/8']['total'])} GiB per GPU; the activations alone peak at "
         f"{gib(p['svd_memory']['ckpt']['measured']['peak'])} GiB (at \"{p['svd_memory']['ckpt']['measured']['at']}\": "
         "the SCE's copy of a full-resolution down block recomputed at 2 x 25 frames in fp32).\n"]
    L += section_params(W, S)
    L += section_memory(p, W, co, mem, lv)
    L += section_svd(p, S)
    L += section_time(p, W, ge)
    L += section_paper(p, ge)
    L += section_shards(p, dw)
    L += section_beyond(p)
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the document here (docs/scale.md)")
    ap.add_argument("--json", help="write every number here as JSON")
    ap.add_argument("--quick", action="store_true", help="fewer scaled-down points, no real-size checks, no SVD or "
                    "shard job (no document)")
    ap.add_argument("--no-real-check", action="store_true", help="skip the whole-step counts at real size")
    args = ap.parse_args()
    p = plan(quick=args.quick, real_check=not args.no_real_check)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(p, f, indent=1, default=str)
    if args.out and not args.quick:
        import platform

        cmd = " ".join([".venv/bin/python bench/plan_capacity.py", *sys.argv[1:]])
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
        machine = (f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU, {mem:.0f} GiB, "
                   f"shared with other jobs; torch {torch.__version__}")
        with open(args.out, "w") as f:
            f.write(render(p, cmd, machine))
    print(json.dumps({k: p["wan_memory"][k]["replicated/8"]["total"] / GIB for k in p["wan_memory"]}))


if __name__ == "__main__":
    main()
