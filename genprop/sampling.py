"""Denoising loops for both backbones, for the plain I2V backbone and for GenProp.

SVD: ``EulerDiscreteScheduler`` in EDM mode as ``StableVideoDiffusionPipeline`` (model input scaled
by ``scale_model_input``, per-frame guidance ramp). Wan: ``FlowMatchEulerDiscreteScheduler`` with
the configured shift, constant guidance (5.0 by default). Classifier-free guidance batches the
unconditional and conditional passes ([uncond, cond] along the batch, as the pipelines). For
GenProp both passes see the same SCE input and task: guidance amplifies G's image/text
conditioning, while the SCE's job (keep the unedited content) is the same in both — so by default
the SCE runs once per step, on the conditional half, and both halves get its features
(``share_sce=False`` runs it on both halves, as in training).
The same ``generator`` seed gives the same output.
"""

from __future__ import annotations

import torch


def _cat(a: dict, b: dict) -> dict:
    return {k: torch.cat([a[k], b[k]]) for k in b}


@torch.no_grad()
def sample_latents(backbone, cond: dict[str, torch.Tensor], shape: tuple[int, ...], *,
                   generator: torch.Generator | None = None, num_steps: int | None = None,
                   guidance_scale: float | None = None, model=None, sce_latents: torch.Tensor | None = None,
                   task_ids: torch.Tensor | None = None, num_frames: int | None = None,
                   share_sce: bool = True) -> torch.Tensor:
    """Run the backbone's sampler from Gaussian noise to clean latents.

    Args:
        backbone: the adapter (``make_scheduler``, ``guidance_scale``, ``null_condition``, ``forward``).
        cond (dict): G's conditioning from ``backbone.encode_condition``.
        shape (tuple): latent shape (B, T_lat, C, h, w).
        generator (torch.Generator | None): seeds the initial noise.
        num_steps (int | None): denoising steps; None = the backbone config's ``num_steps``.
        guidance_scale (float | None): None = the backbone's default (SVD ramp 1 -> 3; Wan 5.0); <= 1 disables CFG.
        model (GenPropModel | None): GenProp around ``backbone``; None samples the plain backbone.
        sce_latents (Tensor | None): (B, T_lat, C, h, w) source-video latents for the SCE (GenProp only).
        share_sce (bool, default True): under CFG, compute the SCE once per step (on the conditional half) and
            inject it into both halves; False runs it on both.
        task_ids (LongTensor | None): (B,) task ids (GenProp only; default 0).
        num_frames (int | None): video frames of the clip.

    Returns:
        (B, T_lat, C, h, w) latents.
    """
    device = cond[next(iter(cond))].device
    scheduler = backbone.make_scheduler()
    scheduler.set_timesteps(num_steps or backbone.config.num_steps, device=device)
    latents = backbone.initial_noise(scheduler, shape, generator, device)
    scale = backbone.guidance_scale(shape[1], guidance_scale).to(device)
    do_cfg = bool(scale.max() > 1)
    cond_in = _cat(backbone.null_condition(cond), cond) if do_cfg else cond
    if model is not None:
        task_ids = task_ids if task_ids is not None else torch.zeros(shape[0], dtype=torch.long, device=device)
        sce_in = torch.cat([sce_latents] * 2) if do_cfg else sce_latents
        task_in = torch.cat([task_ids] * 2) if do_cfg else task_ids
    last = len(scheduler.timesteps) - 1
    for i, t in enumerate(scheduler.timesteps):
        # 1. batch the unconditional and conditional passes
        x = torch.cat([latents] * 2) if do_cfg else latents
        x = backbone.scale_model_input(scheduler, x, t)
        ts = t.expand(x.shape[0])
        # 2. denoiser (plain G, or GenProp)
        if model is None:
            pred = backbone(x, ts, cond_in)
        else:
            # the MPD's mask is only read after the last step: skip it on the others
            pred = model(x, ts, cond_in, sce_in, task_in, num_frames=num_frames, predict_mask=i == last,
                         share_sce_across_cfg=do_cfg and share_sce).prediction
        # 3. guidance and the scheduler step
        if do_cfg:
            uncond, cond_pred = pred.chunk(2)
            pred = uncond + scale * (cond_pred - uncond)
        latents = scheduler.step(pred, t, latents).prev_sample
    return latents


@torch.no_grad()
def generate(backbone, first_frame: torch.Tensor, num_frames: int, prompt: str | None = None, seed: int = 0,
             num_steps: int | None = None, guidance_scale: float | None = None) -> torch.Tensor:
    """Plain image-to-video with the backbone: (B, 3, H, W) in [-1, 1] -> video (B, num_frames, 3, H, W).

    Args:
        backbone: the adapter; first_frame (Tensor); num_frames (int); prompt (str | None);
        seed (int, default 0); num_steps (int | None); guidance_scale (float | None).
    """
    g = torch.Generator(device=first_frame.device).manual_seed(seed)
    cond = backbone.encode_condition(first_frame, prompt, generator=g, num_frames=num_frames)
    shape = _latent_shape(backbone, first_frame, num_frames)
    latents = sample_latents(backbone, cond, shape, generator=g, num_steps=num_steps, guidance_scale=guidance_scale)
    return backbone.decode_latents(latents, num_frames)


@torch.no_grad()
def propagate(model, source_video: torch.Tensor, edited_first_frame: torch.Tensor, prompt: str | None = None,
              task_id: int = 0, seed: int = 0, num_steps: int | None = None,
              guidance_scale: float | None = None, share_sce: bool = True) -> torch.Tensor:
    """GenProp: carry the edit of the first frame through the video.

    Args:
        model (GenPropModel): the model.
        source_video (Tensor): (B, T, 3, H, W) in [-1, 1], the original video (to the SCE).
        edited_first_frame (Tensor): (B, 3, H, W) in [-1, 1] (to G).
        prompt (str | None): text prompt (Wan); task_id (int, default 0 = default task); seed (int, default 0);
        num_steps (int | None), guidance_scale (float | None), share_sce (bool): as :func:`sample_latents`.

    Returns:
        (B, T, 3, H, W) the propagated video, with the input's frame count.
    """
    bb = model.backbone
    num_frames = source_video.shape[1]
    g = torch.Generator(device=source_video.device).manual_seed(seed)
    sce_latents = bb.encode_video(source_video)
    cond = bb.encode_condition(edited_first_frame, prompt, generator=g, num_frames=num_frames)
    cond = model.source_condition(cond, source_video, edited_first_frame)
    task_ids = torch.full((source_video.shape[0],), task_id, dtype=torch.long, device=source_video.device)
    latents = sample_latents(bb, cond, tuple(sce_latents.shape), generator=g, num_steps=num_steps,
                             guidance_scale=guidance_scale, model=model, sce_latents=sce_latents, task_ids=task_ids,
                             num_frames=num_frames, share_sce=share_sce)
    return bb.decode_latents(latents, num_frames)


def _latent_shape(backbone, first_frame: torch.Tensor, num_frames: int) -> tuple[int, ...]:
    lm = backbone.latent_map
    b, _, h, w = first_frame.shape
    return (b, backbone.latent_frames(num_frames), lm.latent_channels, h // lm.spatial_factor, w // lm.spatial_factor)
