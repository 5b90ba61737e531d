"""The region-aware loss of GenProp (Eq. 4-7) and the helpers that shape its masks.

L = L_non-mask + lambda * L_mask + beta * L_grad + gamma * L_MPD, with

- L_mask / L_non-mask: the diffusion MSE (raw prediction vs the backbone's training target) inside /
  outside the latent mask, each normalised by its region's area *per sample* (so lambda means the
  same for a small and a large object); a soft mask m weights as m (for a binary mask this is Eq. 4);
- L_grad: finite difference ||f(E(V + delta m)) - f(E(V))||_2 / delta per feature position, averaged
  over the (resized) mask, where f is what the SCE injects into G; computed in fp32;
- L_MPD: MSE between the MPD's per-video-frame mask and the instance mask at latent resolution.

Masks are Gaussian-downsampled to the latent grid; for a VAE that compresses time, a latent frame's
mask is the max over the video frames it holds (first latent frame = first video frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genprop.sample_draws import uniform


@dataclass(frozen=True)
class RegionLossConfig:
    """Weights of the region-aware loss.

    Args:
        mask_weight (float, default 2.0): lambda, weight of L_mask.
        grad_weight (float, default 1.0): beta, weight of L_grad.
        mpd_weight (float, default 1.0): gamma, weight of L_MPD.
        grad_delta (float, default 1e-2): delta, the perturbation of the SCE's source latents inside the mask.
        task_drop_prob (float, default 0.1): probability of replacing a task id by the default id (0).
        grad_every (int, default 1): compute L_grad on every k-th step only, weighted by k (lazy
            regularisation, as StyleGAN2 does for R1): the mean gradient is unchanged while the
            perturbed SCE pass, which costs ~0.28x of a full fine-tuning step on Wan 14B, runs 1/k
            as often. 1 is the paper's setting; 2 brings the DiT step under 1.2x (docs/benchmarks.md).
        region_weighting (bool, default True): weight the two regions as Eq. 7 (each normalised by its own
            area, L_mask times lambda). False is the "w/o RA loss" ablation's plain diffusion MSE over every
            latent position (``mask_weight`` unused; set ``grad_weight`` 0 as well to drop L_grad).
        mpd_area_balanced (bool, default False): L_MPD as the squared error averaged inside the mask and outside
            it, each by its own area, summed (:func:`balanced_squared_error`), instead of the paper's plain MSE,
            under which a small object's mask is outvoted by the background (the procedural world's objects:
            0.06 inside vs 0.03 outside after training, never reaching the 0.5 threshold).
    """

    mask_weight: float = 2.0
    grad_weight: float = 1.0
    mpd_weight: float = 1.0
    grad_delta: float = 1e-2
    task_drop_prob: float = 0.1
    grad_every: int = 1
    region_weighting: bool = True
    mpd_area_balanced: bool = False

    def __post_init__(self):
        if self.grad_every < 1:
            raise ValueError(f"grad_every must be >= 1, got {self.grad_every}")

    def grad_delta_at(self, step: int) -> float:
        """The perturbation to pass to ``GenPropModel.forward`` at training ``step`` (0 = skip the pass; always 0
        when ``grad_weight`` is 0, whose L_grad would not count)."""
        return self.grad_delta if self.grad_weight and step % self.grad_every == 0 else 0.0


def gaussian_downsample(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Gaussian blur (sigma = factor / 2) then area-average by ``factor``: (B, T, H, W) -> (B, T, H/f, W/f)."""
    if factor == 1:
        return mask.float()
    b, t, h, w = mask.shape
    sigma = factor / 2
    radius = int(math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=mask.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    m = mask.float().reshape(b * t, 1, h, w)
    m = F.pad(m, (radius, radius, radius, radius), mode="replicate")
    m = F.conv2d(m, k.view(1, 1, 1, -1))
    m = F.conv2d(m, k.view(1, 1, -1, 1))
    return F.avg_pool2d(m, factor).reshape(b, t, h // factor, w // factor)


def compress_time(mask: torch.Tensor, temporal_factor: int, num_latent_frames: int) -> torch.Tensor:
    """(B, T, h, w) video-frame masks -> (B, T_lat, h, w): frame 0 alone, then max over groups of ``temporal_factor``.

    A clip shorter than 1 + tf (T_lat - 1) frames (a padded clip) repeats its last frame, as the latent map does.
    """
    if temporal_factor == 1:
        return mask[:, :num_latent_frames]
    need = 1 + temporal_factor * (num_latent_frames - 1)
    if mask.shape[1] < need:
        mask = torch.cat([mask, mask[:, -1:].expand(-1, need - mask.shape[1], -1, -1)], dim=1)
    rest = mask[:, 1:need].unflatten(1, (num_latent_frames - 1, temporal_factor)).amax(dim=2)
    return torch.cat([mask[:, :1], rest], dim=1)


def loss_masks(mask: torch.Tensor, latent_map, num_latent_frames: int,
               mpd_scale: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The two masks the loss needs, from the instance mask at video resolution.

    Args:
        mask (Tensor): (B, T, H, W) in {0, 1} (or soft), the edited region per video frame.
        latent_map: the backbone's latent map (``spatial_factor``, ``temporal_factor``).
        num_latent_frames (int): T_lat of the latents.
        mpd_scale (int, default 1): the MPD's mask pixels per latent pixel and side (``MaskPredictionDecoder.scale``;
            the latent map's spatial factor: the video's own resolution, the mask itself).

    Returns:
        (latent_mask (B, T_lat, 1, h, w) for L_mask/L_non-mask/L_grad and the SCE perturbation,
         mpd_target (B, T, h s, w s) for L_MPD).
    """
    grid = gaussian_downsample(mask, latent_map.spatial_factor)  # (B, T, h, w)
    latent = compress_time(grid, latent_map.temporal_factor, num_latent_frames)
    target = grid if mpd_scale == 1 else gaussian_downsample(mask, latent_map.spatial_factor // mpd_scale)
    return latent.unsqueeze(2), target


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-sample sum(w v) / sum(w) (w broadcast to v; 0 for an empty region), averaged over the batch.

    A plain mean over samples, so the loss of a batch is the mean of its samples' losses however the batch is split
    over workers and micro-batches (the distributed step then equals one process's step on the whole batch).
    """
    b = values.shape[0]
    weight = weight.expand_as(values)
    num = (values * weight).reshape(b, -1).sum(1)
    area = weight.reshape(b, -1).sum(1)
    # no host sync (no .any() / boolean indexing): a sample with an empty region contributes 0 (num is 0 there)
    return (num / area.clamp_min(torch.finfo(values.dtype).tiny)).mean()


def region_terms(prediction: torch.Tensor, target: torch.Tensor, latent_mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_mask, L_non-mask) in fp32, each normalised by its region's area (per sample).

    Args:
        prediction, target (Tensor): (B, T_lat, C, h, w).
        latent_mask (Tensor): (B, T_lat, 1, h, w) in [0, 1].
    """
    d2 = (prediction.float() - target.float()) ** 2
    m = latent_mask.float().expand_as(d2)
    return _weighted_mean(d2, m), _weighted_mean(d2, 1 - m)


def grad_term(features: list[torch.Tensor], features_perturbed: list[torch.Tensor] | None, delta: float,
              latent_mask: torch.Tensor) -> torch.Tensor:
    """L_grad (Eq. 5-6) in fp32: mask-weighted mean of ||(f(E(V + delta m)) - f(E(V))) / delta||_2, over feature levels.

    Args:
        features, features_perturbed (list[Tensor]): per level (B, T_lat, C_i, h_i, w_i).
        delta (float): the perturbation size.
        latent_mask (Tensor): (B, T_lat, 1, h, w).
    """
    if not features_perturbed or not delta:
        return latent_mask.new_zeros((), dtype=torch.float32)
    terms = []
    for f, fp in zip(features, features_perturbed):
        diff = (fp.float() - f.float()) / delta
        norm = torch.linalg.vector_norm(diff, dim=2)  # (B, T, h_i, w_i)
        b, t, h, w = norm.shape
        m = F.interpolate(latent_mask.float().flatten(0, 1), size=(h, w), mode="area").reshape(b, t, h, w)
        terms.append(_weighted_mean(norm, m))
    return torch.stack(terms).mean()


def balanced_squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(p - m)^2 in fp32 averaged inside the soft mask ``m`` and outside it, each by its own area, summed.

    Args:
        prediction (Tensor): values, any shape.
        target (Tensor): the mask in [0, 1], the same shape.
    """
    m = target.float()
    d2 = (prediction.float() - m) ** 2
    return _weighted_mean(d2, m) + _weighted_mean(d2, 1 - m)


def region_aware_loss(output, target: torch.Tensor, latent_mask: torch.Tensor, mpd_target: torch.Tensor,
                      config: RegionLossConfig = RegionLossConfig()) -> dict[str, torch.Tensor]:
    """Eq. 7: L = L_non-mask + lambda L_mask + beta L_grad + gamma L_MPD (``region_weighting`` false: the plain
    MSE in place of the first two terms, which are still returned).

    Args:
        output (GenPropOutput): the model's forward output (prediction, mask, SCE features).
        target (Tensor): (B, T_lat, C, h, w) the backbone's training target.
        latent_mask (Tensor): (B, T_lat, 1, h, w) from :func:`loss_masks`.
        mpd_target (Tensor): (B, T, h, w) from :func:`loss_masks`.
        config (RegionLossConfig): the weights.

    Returns:
        {"loss", "non_mask", "mask", "grad", "mpd"}: the total and every term (fp32 scalars).
    """
    l_mask, l_non = region_terms(output.prediction, target, latent_mask)
    l_grad = grad_term(output.sce_features, output.sce_features_perturbed, output.delta, latent_mask)
    if config.mpd_area_balanced:
        l_mpd = balanced_squared_error(output.mask, mpd_target)
    else:
        l_mpd = F.mse_loss(output.mask.float(), mpd_target.float())
    # L_grad is only present on every grad_every-th step (see RegionLossConfig); weight it up to match.
    grad_weight = config.grad_weight * config.grad_every
    if config.region_weighting:
        diffusion = l_non + config.mask_weight * l_mask
    else:  # the plain diffusion MSE: every latent position weighs the same, wherever the mask is
        diffusion = F.mse_loss(output.prediction.float(), target.float())
    total = diffusion + grad_weight * l_grad + config.mpd_weight * l_mpd
    return {"loss": total, "non_mask": l_non, "mask": l_mask, "grad": l_grad, "mpd": l_mpd}


def drop_task_ids(task_ids: torch.Tensor, prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each task id by the default id (0) with probability ``prob`` (trains the inference-time default)."""
    if prob <= 0:
        return task_ids
    drop = uniform(generator, task_ids.shape, task_ids.device) < prob
    return torch.where(drop, torch.zeros_like(task_ids), task_ids)
