"""Benchmark: seconds per output frame, GenProp sampler vs the plain backbone sampler, same steps (tiny, CPU).

GenProp: ``genprop.sampling.propagate`` (SCE on the source latents + injections every step, run once
for CFG's two halves; the MPD on the last step). Plain: ``genprop.sampling.generate`` on the same backbone with the same first frame,
steps and guidance. Both include encoding and decoding. Reports the median over runs (GenProp and plain
alternating) after a warm-up, per output frame, and the ratio.

    python bench/bench_sampler.py [--frames 9] [--steps 10] [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from genprop.models import GenPropConfig, GenPropModel
from genprop.models.backbones import SVDBackboneConfig, WanBackboneConfig
from genprop.sampling import generate, propagate


def configs() -> dict[str, GenPropConfig]:
    # the same tiny configs as bench_train_step.py (Wan: 2 of 8 blocks in the SCE; SVD: 1 block)
    wan = WanBackboneConfig.tiny(num_layers=8)
    wan = replace(wan, transformer={**wan.transformer, "num_attention_heads": 4, "attention_head_dim": 24,
                                    "ffn_dim": 384})
    return {"wan": GenPropConfig(backbone=wan, sce_blocks=2, task_dim=32),
            "svd": GenPropConfig(backbone=SVDBackboneConfig.tiny(), sce_blocks=1, task_dim=32)}


def timed_pair(a, b, runs: int) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, run alternately (a shared machine's load hits both alike)."""
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(runs):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print("| backbone | frames × px | steps | GenProp s/frame | plain s/frame | time ratio | FLOP ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, cfg in configs().items():
        model = GenPropModel(cfg).eval()
        g = torch.Generator().manual_seed(0)
        video = torch.rand(1, args.frames, 3, 32, 32, generator=g) * 2 - 1
        run_gp = lambda: propagate(model, video, video[:, 0], "a cat", task_id=0, seed=0,  # noqa: E731
                                   num_steps=args.steps)
        run_plain = lambda: generate(model.backbone, video[:, 0], args.frames, "a cat", seed=0,  # noqa: E731
                                     num_steps=args.steps)
        gp, plain = timed_pair(run_gp, run_plain, args.runs)
        flops = []
        for fn in (run_gp, run_plain):
            with FlopCounterMode(display=False) as counter:
                fn()
            flops.append(counter.get_total_flops())
        print(f"| {name} | {args.frames} × 32² | {args.steps} | {gp / args.frames * 1e3:.2f} ms | "
              f"{plain / args.frames * 1e3:.2f} ms | {gp / plain:.2f}x | {flops[0] / flops[1]:.2f}x |", flush=True)


def real_sampling_ratio(steps: int = 50) -> float:
    """FLOP ratio of GenProp / plain sampling for Wan2.1 I2V 14B (17 x 480 x 832, CFG, ``steps`` steps).

    Counted on the meta device per denoiser call (the CFG batch of 2, the SCE run once on the conditional half as
    the sampler does): GenProp without the MPD on every step and with it on the last one, against the plain
    transformer. Encoding and decoding are left out (the same in both).
    """
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from bench_train_step import real_model

    with torch.device("meta"), torch.no_grad():
        model, b, _ = real_model("wan")
        model.eval()
        x, ts = torch.cat([b["x"]] * 2), torch.cat([b["t"]] * 2)
        cond = {k: torch.cat([v] * 2) for k, v in b["cond"].items()}
        src, tasks = torch.cat([b["src"]] * 2), torch.cat([b["tasks"]] * 2)

        def count(fn):
            with FlopCounterMode(display=False) as counter:
                fn()
            return counter.get_total_flops()

        plain = count(lambda: model.backbone(x, ts, cond))
        lean = count(lambda: model(x, ts, cond, src, tasks, num_frames=b["frames"], predict_mask=False,
                                   share_sce_across_cfg=True))
        full = count(lambda: model(x, ts, cond, src, tasks, num_frames=b["frames"], share_sce_across_cfg=True))
    return ((steps - 1) * lean + full) / (steps * plain)


if __name__ == "__main__":
    main()
    print()
    print(f"Wan2.1 I2V 14B-480P, 17x480x832, 50 steps with CFG, SCE 10/40 blocks (meta-device FLOPs): "
          f"GenProp / plain = {real_sampling_ratio():.3f}x")
