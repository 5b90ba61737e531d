"""Can the Mask Prediction Decoder find the edit from G's features when nothing else moves?

Trains only the MPD of a procedural GenProp model (the SCE, task embeddings and G frozen) on the run's own
procedural samples, at noise levels up to ``--max-sigma``, and scores the mask it reads at fixed noise levels on
64 held-out scenes (seeds past the validation cases'): IoU of ``mask >= threshold`` (0.3 / 0.5 / 0.7 / 0.9) against the sample's edit mask at the video's
resolution (the MPD's mask upsampled bilinearly), by task id (1 copy-and-paste, 2 mask-and-fill, 3 colour fill). A probe of the MPD's read-out, not a training recipe: if the MPD alone cannot reach the
flow tracker here, more steps of the whole model will not either.

    python scripts/probe_mpd.py --model models/procedural-genprop/model --steps 300 --lr 1e-3 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from genprop.models.anchoring.flow import FLOW_ANCHOR_KEY  # noqa: E402



def _forward_mask(model, batch: dict, sigma: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The MPD's mask (B, T, H', W') with G's input the target noised to ``sigma`` (B,) (flow matching)."""
    x0 = batch["target_latents"]
    noise = torch.randn(x0.shape, generator=generator)
    s = sigma.view(-1, 1, 1, 1, 1)
    cond = model.source_condition_from_latents(batch["cond"], batch["sce_latents"])
    x_t, t, sce = (1 - s) * x0 + s * noise, sigma * 1000, batch["sce_latents"]
    if model.probe_read is None:
        return model(x_t, t, cond, sce, batch["task_id"], num_frames=batch["mask"].shape[1]).mask
    # the model's own stages (an anchored model's gate and re-anchored G included), the MPD also reading a linear
    # map of the SCE's last hidden state or of the gate's tokens through EncodedInputs.mpd_hint
    enc = model.encode(x_t, t, cond, sce, batch["task_id"])
    gate = None
    if hasattr(model, "reanchor"):
        gate, enc = model.reanchor(enc, x_t, t, cond, sce)
    read = enc.sce_hidden if model.probe_read == "sce" else model.backbone.grid_to_tokens(gate, enc.ctx)
    if model.probe_read == "footprint":  # the gate's values and its inputs, the footprints per latent channel
        flow = cond.get(FLOW_ANCHOR_KEY)
        read = torch.cat([read, model.backbone.grid_to_tokens(model.source_gate.footprints(
            model.backbone, cond, sce, flow).to(read.dtype), enc.ctx)], dim=-1)
    enc = dataclasses.replace(enc, mpd_hint=model.probe_proj(read.to(enc.g_hidden.dtype)))
    return model.decode(enc, batch["mask"].shape[1]).mask


THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def _iou_by_task(model, batches: list[dict], sigma: float) -> dict:
    """Mean IoU by task id and threshold of the MPD's mask, upsampled bilinearly to the video, against the edit
    mask: {task id: {threshold: IoU}}."""
    g = torch.Generator().manual_seed(0)
    by: dict[int, dict[float, list[float]]] = {}
    with torch.no_grad():
        for batch in batches:
            mask = _forward_mask(model, batch, torch.full((batch["mask"].shape[0],), sigma), g)
            true = batch["mask"] > 0.5  # (B, T, H, W)
            up = F.interpolate(mask.float(), size=true.shape[-2:], mode="bilinear", align_corners=False)
            for th in THRESHOLDS:
                pred = up >= th
                inter = (pred & true).flatten(1).sum(1).float()
                union = (pred | true).flatten(1).sum(1).float()
                for t, i, u in zip(batch["task_id"].tolist(), inter.tolist(), union.tolist()):
                    by.setdefault(int(t), {}).setdefault(th, []).append(i / u if u else 1.0)
    return {t: {th: round(sum(v) / len(v), 3) for th, v in ths.items()} for t, ths in sorted(by.items())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/procedural-genprop/model")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-sigma", type=float, default=1.0, help="training noise levels: sigma ~ U(0, max)")
    ap.add_argument("--loss", choices=["balanced", "mse"], default="balanced")
    ap.add_argument("--fresh-head", action="store_true", help="re-initialise the MPD (block copied from G again)")
    ap.add_argument("--mask-scale", type=int, default=None,
                    help="a fresh MPD with this many mask pixels per latent pixel and side (the latent map's "
                         "spatial factor: the video's resolution)")
    ap.add_argument("--read", choices=["sce", "gate", "footprint"], default=None,
                    help="the MPD also reads a fresh linear map of the SCE's last hidden state, of the anchoring "
                         "gate's tokens, or of those and the gate's footprints (added to G's penultimate features)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from genprop import configs
    from genprop.losses import balanced_squared_error, loss_masks
    from genprop.models import load_genprop
    from genprop.models.mask_decoder import MaskPredictionDecoder
    from genprop.training.data import collate
    from genprop.training.procedural_genprop import (GENPROP_VALIDATION_SEED_BASE, GenPropRunConfig,
                                                     ProceduralSamples)

    with open(os.path.join(args.model, "run_config.json")) as f:
        config = configs.from_dict(GenPropRunConfig, json.load(f)["config"])
    model = load_genprop(args.model)
    if args.fresh_head or args.mask_scale:
        model.mpd = MaskPredictionDecoder.from_backbone(model.backbone, model.config.task_dim,
                                                        args.mask_scale or model.mpd.scale)
    for p in model.parameters():
        p.requires_grad_(False)
    model.probe_read, model.probe_proj, params = args.read, None, list(model.mpd.parameters())
    if args.read:
        width = model.backbone.encoder_output_channels(0)[0]
        if args.read == "sce":
            model.probe_proj = torch.nn.Linear(width, width)
        else:
            _, p_h, p_w = model.backbone.transformer.config.patch_size
            k = model.source_gate.channels
            per_position = k * (1 + model.backbone.latent_map.latent_channels * (args.read == "footprint"))
            model.probe_proj = torch.nn.Linear(per_position * p_h * p_w, width)
        params += list(model.probe_proj.parameters())
    for p in params:
        p.requires_grad_(True)
    model.train()
    samples = ProceduralSamples(config, model.backbone)
    # scenes no training step and no validation case uses: past the validation seeds
    base = GENPROP_VALIDATION_SEED_BASE + 100_000
    held_out = [collate(samples.samples(range(base + 16 * i, base + 16 * i + 16))[0]) for i in range(4)]

    def target(batch):
        return loss_masks(batch["mask"], model.backbone.latent_map, batch["target_latents"].shape[1],
                          model.mpd.scale)[1]

    def score(step):
        model.eval()
        row = {"step": step, **{f"iou@{s}": _iou_by_task(model, held_out, s) for s in (0.05, 0.2)}}
        model.train()
        print(json.dumps(row), flush=True)
        return row

    rows = [score(0)]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    t0 = time.monotonic()
    for step in range(1, args.steps + 1):
        batch, _ = samples.batch(step)
        if batch is None:
            continue
        sigma = torch.rand(batch["mask"].shape[0], generator=g) * args.max_sigma
        mask = _forward_mask(model, batch, sigma, g)
        t = target(batch)
        loss = balanced_squared_error(mask, t) if args.loss == "balanced" else ((mask.float() - t) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0:
            print(json.dumps({"step": step, "loss": round(float(loss), 4), "s": round(time.monotonic() - t0)}),
                  flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            rows.append(score(step))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
