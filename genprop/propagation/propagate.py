"""Single-video propagation on the model's sampler, with faithful output and long-video windows.

The edited first frame goes to G, the original video to the SCE, with the task embedding and the
prompt; classifier-free guidance at the backbone's default scale unless set; the same seed gives
the same output. One window is exactly ``genprop.sampling.propagate`` (same calls, same order of
random draws); this module adds the working-size map, windows, the MPD mask (read off the last
denoising step), tracking output, memory controls and peak memory.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from genprop import masks, storage, video
from genprop.errors import DataError
from genprop.models.flow_anchor import with_flow_anchor
from genprop.propagation import memory
from genprop.propagation.config import TRACK_TASK_ID, PropagationConfig
from genprop.propagation.long_video import drift_report, run_windows
from genprop.propagation.resize import FrameMap
from genprop.propagation.tracking import track_mask, write_mask_video
from genprop.sampling import sample_latents

log = logging.getLogger(__name__)


@dataclass
class PropagationResult:
    """What :meth:`Propagator.run` returns (everything at the input's size).

    Attributes:
        frames (np.ndarray): (T, H, W, 3) uint8 the propagated video.
        mask (np.ndarray): (T, H, W) float32 in [0, 1], the MPD's mask upsampled from the latent grid.
        track_mask (np.ndarray | None): (T, H, W) bool, the painted change segmented (colour-fill task only).
        work_size (tuple[int, int]): the (h, w) the model ran at.
        drift (dict): per-window PSNR_m and the drift (``long_video.drift_report``).
        peak_memory (dict): ``memory.peak_memory`` after the run.
        fps (Fraction | None): the input's frame rate, when read from a file.
    """

    frames: np.ndarray
    mask: np.ndarray
    track_mask: np.ndarray | None
    work_size: tuple[int, int]
    drift: dict
    peak_memory: dict
    fps: Fraction | None = None

    def write(self, out_url: str, mask_out: str | None = None, track_out: str | None = None,
              lossless: bool = False) -> None:
        """Write the video (and mask videos) at the input's fps; each file atomically.

        Args:
            out_url (str): the propagated video (mp4).
            mask_out (str | None): the MPD mask video (grey; soft values kept).
            track_out (str | None): the painted-change mask video (colour-fill task).
            lossless (bool, default False): the video losslessly (``PropagationConfig.lossless_output``).
        """
        if self.fps is None:
            raise ValueError("no fps: set PropagationResult.fps before writing")
        if mask_out:
            write_mask_video(self.mask, mask_out, self.fps)
        if track_out and self.track_mask is not None:
            write_mask_video(self.track_mask, track_out, self.fps)
        video.encode(self.frames, out_url, self.fps, lossless=lossless)  # last: its existence means the row is complete


class _MaskRecorder:
    """Wraps the model for ``sample_latents``; keeps the MPD mask of the conditional branch of the last call."""

    def __init__(self, model, batch: int):
        self.model, self.batch, self.mask = model, batch, None

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        if out.mask is not None:  # the sampler asks for the mask on its last step only
            self.mask = out.mask[-self.batch:]  # CFG batches [uncond, cond]: the last B rows are conditional
        return out


def padded_frames(backbone, num_frames: int) -> int:
    """Frames a window of ``num_frames`` is padded to (Wan's VAE needs 1 mod 4; others as is)."""
    lm = backbone.latent_map
    tf = int(getattr(lm, "temporal_factor", 1))
    if tf == 1:
        return num_frames
    return (num_frames - 1 + tf - 1) // tf * tf + 1


def default_window(backbone) -> int:
    """The backbone's clip length: Wan 81 frames; SVD its U-Net's ``num_frames`` (SVD-XT 25)."""
    if backbone.kind == "wan":
        return 81
    return int(backbone.unet.config.num_frames)


class Propagator:
    """Propagates first-frame edits with one loaded model.

    Args:
        model (GenPropModel): the model (moved to the configured device).
        config (PropagationConfig): settings (default ``PropagationConfig()``).
    """

    def __init__(self, model, config: PropagationConfig | None = None):
        self.config = config or PropagationConfig()
        self.device = memory.resolve_device(self.config.device)
        self.model = model.eval()
        bb = model.backbone
        if self.config.vae_tiling:
            memory.enable_vae_tiling(bb)
        memory.place(self.model, self.device, self.config.cpu_offload)
        self.window = self.config.window or default_window(bb)

    def frame_map(self, height: int, width: int) -> FrameMap:
        """The working-size map for frames of (height, width)."""
        return FrameMap.for_backbone(self.model.backbone, height, width, self.config.working_area)

    @torch.no_grad()
    def sample_window(self, source: torch.Tensor, first_frame: torch.Tensor, prompt: str | None, task: int,
                      seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One window, as ``sampling.propagate`` (plus padding for Wan's VAE and the MPD mask).

        Args:
            source (Tensor): (1, t, 3, h, w) original frames in [-1, 1] (to the SCE).
            first_frame (Tensor): (1, 3, h, w) the (edited or generated) first frame (to G).
            prompt (str | None), task (int), seed (int).

        Returns:
            (video (1, t, 3, h, w), mask (t, h', w') on the latent grid).
        """
        cfg, model, bb, dev = self.config, self.model, self.model.backbone, self.device
        t = source.shape[1]
        t_pad = padded_frames(bb, t)
        if t_pad != t:  # repeat the last frame; cropped after decoding
            source = torch.cat([source, source[:, -1:].expand(-1, t_pad - t, -1, -1, -1)], dim=1)
        source, first_frame = source.to(dev), first_frame.to(dev)
        g = torch.Generator(device=dev).manual_seed(seed)
        off = cfg.cpu_offload
        # 1. encoders: SCE latents of the original frames, G's condition from the first frame
        with memory.stage(model, ("latent_map",), dev, off), memory.autocast(dev, cfg.dtype):
            sce_latents = bb.encode_video(source).float()
        with memory.stage(model, ("encoders", "latent_map"), dev, off), memory.autocast(dev, cfg.dtype):
            cond = {k: v.float() for k, v in
                    bb.encode_condition(first_frame, prompt, generator=g, num_frames=t_pad).items()}
            cond = with_flow_anchor(model, cond, source, first_frame)
        # 2. denoising (the MPD mask of the last step is kept)
        recorder = _MaskRecorder(model, 1)
        task_ids = torch.full((1,), task, dtype=torch.long, device=dev)
        with memory.stage(model, ("denoiser",), dev, off), memory.autocast(dev, cfg.dtype):
            latents = sample_latents(bb, cond, tuple(sce_latents.shape), generator=g, num_steps=cfg.num_steps,
                                     guidance_scale=cfg.guidance, model=recorder, sce_latents=sce_latents,
                                     task_ids=task_ids, num_frames=t_pad)
        # 3. decoding, in chunks of latent frames where the map has no time compression
        with memory.stage(model, ("latent_map",), dev, off), memory.autocast(dev, cfg.dtype):
            out = self._decode(latents.float(), t_pad)
        return out[:, :t].float().cpu(), recorder.mask[0, :t].float().cpu()

    def _decode(self, latents: torch.Tensor, num_frames: int) -> torch.Tensor:
        bb, chunk = self.model.backbone, self.config.decode_chunk_frames
        if int(getattr(bb.latent_map, "temporal_factor", 1)) != 1 or latents.shape[1] <= chunk:
            return bb.decode_latents(latents, num_frames)
        parts = [bb.decode_latents(latents[:, i:i + chunk]) for i in range(0, latents.shape[1], chunk)]
        return torch.cat(parts, dim=1)[:, :num_frames]

    def run(self, original: np.ndarray, edited_first_frame: np.ndarray, prompt: str | None = None,
            task: int = 0, seed: int | None = None) -> PropagationResult:
        """Propagate the edit of the first frame through ``original``.

        Args:
            original (np.ndarray): (T, H, W, 3) uint8, the original video.
            edited_first_frame (np.ndarray): (H, W, 3) uint8 (same size as the video).
            prompt (str | None): text prompt; task (int, default 0): task embedding id;
            seed (int | None): None = ``config.seed``.

        Returns:
            PropagationResult at the input's frame count and size.
        """
        if edited_first_frame.shape != original.shape[1:]:
            raise ValueError(f"edited first frame is {edited_first_frame.shape[1]}x{edited_first_frame.shape[0]}, "
                             f"the video is {original.shape[2]}x{original.shape[1]} (width x height)")
        seed = self.config.seed if seed is None else seed
        memory.reset_peak(self.device)
        fmap = self.frame_map(*original.shape[1:3])
        source = fmap.to_working(original)
        first = fmap.image_to_working(edited_first_frame)

        def sample(src, first_frame, k):
            return self.sample_window(src, first_frame, prompt, task, seed + k)

        work_video, grid_mask, spans = run_windows(sample, source, first, self.window, self.config.overlap)
        frames = fmap.from_working(work_video)
        mask = fmap.mask_from_grid(grid_mask)
        tracked = None
        if task == TRACK_TASK_ID:
            tracked = track_mask(frames, original, edited_first_frame, self.config.track_threshold)
        drift = drift_report(frames, original, mask >= self.config.mask_threshold, spans)
        return PropagationResult(frames=frames, mask=mask, track_mask=tracked, work_size=fmap.work_size,
                                 drift=drift, peak_memory=memory.peak_memory(self.device))

    def run_files(self, video_url: str, edited_url: str, prompt: str | None = None, task: int = 0,
                  seed: int | None = None, decode_timeout_s: float | None = 120.0) -> PropagationResult:
        """:meth:`run` on a video file and an edited-first-frame image (any URL).

        Raises:
            DataError: an unreadable video or image, or an edited frame whose size differs from the video's.
        """
        frames, info, _ = video.decode_with_info(video_url, timeout_s=decode_timeout_s)
        edited = masks.read_image(edited_url)
        if edited.shape[:2] != frames.shape[1:3]:
            raise DataError(edited_url, f"size mismatch: the edited first frame is {edited.shape[1]}x{edited.shape[0]} "
                                        f"but the video {video_url} is {frames.shape[2]}x{frames.shape[1]} "
                                        "(width x height); edit a frame of the video's own size")
        result = self.run(np.asarray(frames), edited, prompt, task, seed)
        result.fps = info.fps
        return result


def load_model(url: str | None):
    """A GenProp model from a checkpoint directory at any URL (remote files are copied locally first).

    Args:
        url (str | None): the checkpoint directory (``genprop_config.json`` + ``genprop_trainable.safetensors``).
    """
    from genprop.models import GenPropModel
    from genprop.models.genprop_model import CONFIG_NAME, WEIGHTS_NAME

    if url is None:
        raise ValueError("no model: pass a checkpoint directory")
    if storage.is_local(url):
        return GenPropModel.from_pretrained(storage.local_path(url))
    with tempfile.TemporaryDirectory(prefix="genprop-model-") as tmp:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            src = storage.join(url, name)
            if not storage.exists(src):
                raise DataError(url, f"not a GenProp checkpoint, {name} is missing")
            with storage.local_copy(src) as local:
                storage.put_file(local, os.path.join(tmp, name))
        return GenPropModel.from_pretrained(tmp)
