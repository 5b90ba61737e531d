"""Benchmark: one GenProp training step vs one full fine-tuning step of the same backbone (tiny configs, CPU).

GenProp step: frozen backbone, SCE = a quarter of the blocks, MPD, both SCE passes of L_grad, region-aware
loss, backward, AdamW on the trainable parameters. Full fine-tuning step: every backbone parameter trainable,
plain MSE, backward, AdamW. Reports median wall time per step and FLOPs (forward + backward) per step,
both as GenProp / full fine-tuning ratios.

    python bench/bench_train_step.py [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from genprop.losses import loss_masks, region_aware_loss
from genprop.models import GenPropConfig, GenPropModel
from genprop.models.backbones import SVDBackboneConfig, WanBackboneConfig


def configs() -> dict[str, GenPropConfig]:
    wan = WanBackboneConfig.tiny(num_layers=8)
    wan = replace(wan, transformer={**wan.transformer, "num_attention_heads": 4, "attention_head_dim": 24,
                                    "ffn_dim": 384})
    svd = SVDBackboneConfig.tiny()
    # Wan: 2 of 8 blocks; SVD: 1 of its 5 encoder-side blocks (2 down + mid) ~ a quarter of its 5 + 2 up blocks
    return {"wan": GenPropConfig(backbone=wan, sce_blocks=2, task_dim=32),
            "svd": GenPropConfig(backbone=svd, sce_blocks=1, task_dim=32)}


def make_batch(model, frames=9, px=32, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    bb = model.backbone
    video = torch.rand(batch, frames, 3, px, px, generator=g) * 2 - 1
    mask = torch.zeros(batch, frames, px, px)
    mask[:, :, 8:20, 8:20] = 1
    with torch.no_grad():
        lat = bb.encode_video(video)
        cond = bb.encode_condition(video[:, 0], "x", generator=g, num_frames=frames)
    s = bb.training_sample(lat, g)
    lm, mt = loss_masks(mask, bb.latent_map, lat.shape[1])
    return dict(x=s.model_input, t=s.timestep, target=s.target, cond=cond, src=lat, tasks=torch.ones(batch).long(),
                latent_mask=lm, mpd_target=mt, frames=frames)


def genprop_step(model, opt, b, delta=1e-2):
    """One step; ``delta=0`` skips the perturbed SCE pass (the off-steps of ``grad_every`` > 1)."""
    out = model(b["x"], b["t"], b["cond"], b["src"], b["tasks"], perturb_mask=b["latent_mask"], perturb_delta=delta,
                num_frames=b["frames"])
    region_aware_loss(out, b["target"], b["latent_mask"], b["mpd_target"])["loss"].backward()
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=True)


def full_step(backbone, opt, b):
    pred = backbone(b["x"], b["t"], b["cond"])
    torch.nn.functional.mse_loss(pred, b["target"]).backward()
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=True)


def timed(fn, steps):
    for _ in range(2):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def amortised(with_grad: float, without_grad: float, every: int) -> float:
    """Mean cost per step when L_grad's perturbed pass runs on every ``every``-th step."""
    return (with_grad + (every - 1) * without_grad) / every


def real_model(name: str):
    """GenProp around the real config on the meta device (no weights) and one input batch for it.

    Wan2.1 I2V 14B: 17 frames at 480x832 (5 latent frames of 60x104); SVD-XT: 14 frames at 576x1024.
    Call inside ``torch.device("meta")``. Returns (model, batch as in :func:`make_batch`, denoiser).
    """
    from genprop.models.backbones import SVDBackbone, WanBackbone
    from genprop.models.backbones.latent_maps import PixelUnshuffleLatents

    lm = PixelUnshuffleLatents(8)  # a stand-in with the VAE's grid; the VAE is not part of the step
    if name == "wan":
        cfg = WanBackboneConfig()
        lm.temporal_factor = 4
        bb = WanBackbone(cfg, WanBackbone.build_transformer(cfg), lm)
        b, t, h, w, c, frames = 1, 5, 60, 104, 16, 17
        cond = dict(prompt_embeds=torch.randn(b, 512, 4096), negative_prompt_embeds=torch.randn(b, 512, 4096),
                    image_embeds=torch.randn(b, 257, 1280), condition=torch.randn(b, t, 20, h, w))
        denoiser = bb.transformer
    else:
        cfg = SVDBackboneConfig()
        bb = SVDBackbone(cfg, SVDBackbone.build_unet(cfg), lm, image_encoder=None)
        b, t, h, w, c, frames = 1, 14, 72, 128, 4, 14
        cond = dict(image_embeds=torch.randn(b, 1, 1024), image_latents=torch.randn(b, 4, h, w),
                    added_time_ids=torch.randn(b, 3))
        denoiser = bb.unet
    model = GenPropModel(GenPropConfig(backbone=cfg), backbone=bb).train()
    x, ts, mask = torch.randn(b, t, c, h, w), torch.full((b,), 0.5), torch.ones(b, t, 1, h, w)
    batch = dict(x=x, t=ts, target=x, cond=cond, src=x, tasks=torch.ones(b).long(), latent_mask=mask,
                 mpd_target=torch.ones(b, frames, h, w), frames=frames)
    return model, batch, denoiser


def real_flop_ratio(name: str) -> tuple[float, float, float]:
    """FLOPs of both steps for the real configs, counted on the meta device (no weights, no compute).

    Returns TFLOP of (GenProp step with L_grad, GenProp step without the perturbed pass, full fine-tuning step).
    """
    with torch.device("meta"):
        model, batch, denoiser = real_model(name)
        f_gp = flops(lambda: genprop_step(model, None, batch))
        f_gp0 = flops(lambda: genprop_step(model, None, batch, delta=0.0))
        for p in denoiser.parameters():
            p.requires_grad_(True)
        model.zero_grad(set_to_none=True)
        f_ft = flops(lambda: full_step(model.backbone, None, batch))
    return f_gp / 1e12, f_gp0 / 1e12, f_ft / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| backbone | params (backbone / trainable) | GenProp step | full FT step | time ratio | "
          "time ratio, grad_every=2 | GenProp GFLOP | full FT GFLOP | FLOP ratio | FLOP ratio, grad_every=2 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, cfg in configs().items():
        model = GenPropModel(cfg).train()
        b = make_batch(model)
        opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4, weight_decay=0.0)
        # full fine-tuning: an identical copy of the backbone with every parameter trainable
        full = GenPropModel(cfg).backbone
        denoiser = full.transformer if name == "wan" else full.unet
        for p in denoiser.parameters():
            p.requires_grad_(True)
        full.train()
        full_opt = torch.optim.AdamW(denoiser.parameters(), lr=1e-4, weight_decay=0.0)
        t_gp = timed(lambda: genprop_step(model, opt, b), args.steps)
        t_gp0 = timed(lambda: genprop_step(model, opt, b, delta=0.0), args.steps)
        t_ft = timed(lambda: full_step(full, full_opt, b), args.steps)
        f_gp = flops(lambda: genprop_step(model, None, b))
        f_gp0 = flops(lambda: genprop_step(model, None, b, delta=0.0))
        f_ft = flops(lambda: full_step(full, None, b))
        model.zero_grad(set_to_none=True)
        denoiser.zero_grad(set_to_none=True)
        n_bb = sum(p.numel() for p in denoiser.parameters())
        n_tr = sum(p.numel() for p in model.trainable_parameters())
        print(f"| {name} | {n_bb / 1e6:.2f} M / {n_tr / 1e6:.2f} M | {t_gp * 1e3:.1f} ms | {t_ft * 1e3:.1f} ms | "
              f"{t_gp / t_ft:.2f}x | {amortised(t_gp, t_gp0, 2) / t_ft:.2f}x | {f_gp / 1e9:.3f} | "
              f"{f_ft / 1e9:.3f} | {f_gp / f_ft:.2f}x | {amortised(f_gp, f_gp0, 2) / f_ft:.2f}x |")
    print()
    print("| real config (meta device) | GenProp TFLOP | full FT TFLOP | FLOP ratio | FLOP ratio, grad_every=2 |")
    print("|---|---|---|---|---|")
    for name, label in (("wan", "Wan2.1 I2V 14B-480P, 17x480x832, SCE 10/40 blocks"),
                        ("svd", "SVD-XT, 14x576x1024, SCE 2 down blocks")):
        try:
            gp, gp0, ft = real_flop_ratio(name)
        except RuntimeError as e:  # diffusers' SVD temporal blender mixes a CPU tensor into meta tensors
            print(f"| {label} | n/a | n/a | not countable on meta: {str(e)[:60]} | n/a |")
            continue
        print(f"| {label} | {gp:.1f} | {ft:.1f} | {gp / ft:.2f}x | {amortised(gp, gp0, 2) / ft:.2f}x |")


if __name__ == "__main__":
    main()
