"""One-process FSDP GenProp steps of a mid-size Wan I2V in bf16: peak memory beside the capacity plan's prediction,
and the step's model FLOP utilisation (MFU).

    python bench/bench_fsdp_gpu.py [--heads 12] [--layers 20] [--frames 49] [--height 480] [--width 832]
                                   [--steps 3] [--shard-backbone] [--device cuda] [--json OUT.json]

The model is what a training worker builds (``shard_model`` over a one-process group: G bf16, SCE / MPD / task
embeddings fp32, an FSDP unit per SCE block), trained by the library ``Trainer`` (bf16 autocast, the SCE in fp32 on
TF32, activation checkpointing, L_grad's perturbed pass every step) on random latents of the clip's shape. The
prediction is ``capacity_model.per_gpu`` for the same parameter counts and the activation coefficients the plan
measured (``docs/runs/plan-capacity.json``), at N = 1 and without the condition encoders (none is built here).
FLOPs are the plan's analytic count for the step (``capacity_model.genprop_step_flops``); MFU is them over the
measured step time and the GPU's dense bf16 peak. ``--device cpu`` with a small config is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [HERE, os.path.join(HERE, "bench")]

import capacity_measure as cm  # noqa: E402
import capacity_model as cf  # noqa: E402
import torch  # noqa: E402

BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12}  # dense bf16 FLOP/s (SXM)


def _n(module) -> int:
    return sum(p.numel() for p in module.parameters())


def trainer_batch(model, frames: int, height: int, width: int, device) -> dict:
    """The training batch contract (``genprop.training.objectives``) for one clip, random values, an edit in the
    middle third."""
    tr = model.backbone.transformer.config
    t, h, w = 1 + (frames - 1) // 4, height // 8, width // 8
    mask = torch.zeros(1, frames, height, width)
    mask[:, :, height // 3: 2 * height // 3, width // 3: 2 * width // 3] = 1
    cond = dict(prompt_embeds=torch.randn(1, 512, tr.text_dim), negative_prompt_embeds=torch.randn(1, 512, tr.text_dim),
                image_embeds=torch.randn(1, 257, tr.image_dim), condition=torch.randn(1, t, 20, h, w))
    batch = dict(target_latents=torch.randn(1, t, 16, h, w), sce_latents=torch.randn(1, t, 16, h, w), cond=cond,
                 mask=mask, task_id=torch.ones(1, dtype=torch.long), keys=["bench"])
    return {k: (v.to(device) if torch.is_tensor(v) else {n: x.to(device) for n, x in v.items()}
                if isinstance(v, dict) else v) for k, v in batch.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=12, help="attention heads of 128 (12: width 1536)")
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up step)")
    ap.add_argument("--shard-backbone", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch.distributed as dist

    from genprop.losses import RegionLossConfig
    from genprop.training import TrainConfig, Trainer
    from genprop.training.fsdp import shard_model

    device = torch.device(args.device)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)
    try:
        # 1. the model as a worker builds it, sharded over the one-process group
        transformer = cm.small_wan(args.heads, args.layers)
        sce_blocks = max(1, args.layers // 4)
        model = cm.wan_genprop(transformer, sce_blocks, device="cpu", bf16_backbone=device.type == "cuda")
        for name, p in model.named_parameters():
            p.requires_grad_(not name.startswith("backbone."))
        facts = {"backbone": _n(model.backbone.transformer), "sce": _n(model.sce), "mpd": _n(model.mpd),
                 "trainable": sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone.")),
                 "block": _n(model.backbone.transformer.blocks[0]), "sce_blocks": sce_blocks,
                 "sce_block": _n(model.sce.blocks[0]) + _n(model.sce.injections[0]), "encoders": {}}
        mask_outputs = model.mpd.head[-1].out_features
        model = shard_model(model.to(device), "genprop", device, args.shard_backbone)
        trainer = Trainer(model, TrainConfig(lr=1e-5, warmup_steps=1, max_steps=100, gradient_checkpointing=True,
                                             loss=RegionLossConfig(grad_every=1)))
        batch = trainer_batch(model, args.frames, args.height, args.width, device)
        # 2. a warm-up step, then the measured ones
        trainer.train_step([batch])
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            m = trainer.train_step([batch])
        sync()
        step_s = (time.perf_counter() - t0) / args.steps
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
        # 3. the plan's prediction and the FLOP count
        tokens = cf.wan_tokens(args.frames, args.height, args.width)
        width = 128 * args.heads
        with open(os.path.join(HERE, "docs", "runs", "plan-capacity.json")) as f:
            coef = json.load(f)["coefficients"]
        act = cf.wan_activations(coef, tokens, True, args.layers, sce_blocks, width)
        predicted = cf.per_gpu(facts, act, 1, "sharded" if args.shard_backbone else "replicated", encoders=False)
        flops = cf.total(cf.genprop_step_flops(transformer, sce_blocks, tokens, True, True, mask_outputs=mask_outputs))
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        peak_flops = next((v for k, v in BF16_PEAK.items() if k in name), None)
        out = {"device": name, "config": vars(args), "tokens": tokens, "width": width, "parameters": facts,
               "loss": m["loss"], "step_s": step_s, "flops": flops,
               "mfu_bf16_peak": flops / step_s / peak_flops if peak_flops else None,
               "peak_gib": peak / cf.GIB if peak is not None else None, "predicted_gib": predicted["total"] / cf.GIB,
               "predicted_phase": predicted["phase"],
               "peak_over_predicted": peak / predicted["total"] if peak is not None else None}
    finally:
        dist.destroy_process_group()
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
