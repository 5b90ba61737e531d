"""Single-video propagation on the model's sampler: streamed window by window, composited at the input's size.

The edited first frame goes to G, the original video to the SCE, with the task embedding and the
prompt; classifier-free guidance at the backbone's default scale unless set; the same seed gives
the same output. One window is exactly ``genprop.sampling.propagate`` (same calls, same order of
random draws). Around it: the working size and window come from the checkpoint
(``genprop_clip.json``: the trained clip) and are checked against the backbone's positional
capacity before anything is decoded; frames stream from the decoder through the windows
(``long_video.stream_windows``) into the composite (``composite``) and the writers (``outputs``),
so only one window and its overlap are held at the input's resolution, whatever the length.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time

import numpy as np
import torch

from genprop import masks, metrics, storage
from genprop.errors import DataError, GenPropError
from genprop.models.backbones.interface import PositionalCapacity
from genprop.models.trained_clip import calibrated_threshold
from genprop.propagation import memory
from genprop.propagation.composite import Compositor, EditRegion
from genprop.propagation.config import PropagationConfig
from genprop.tasks import Task
from genprop.propagation.long_video import drift_of_windows, stream_windows, window_spans
from genprop.propagation.outputs import ArraySink, BackgroundSink, FileSink, OutputFrame, PropagationResult
from genprop.propagation.progress import Progress
from genprop.propagation.resize import FrameMap, to_uint8
from genprop.propagation.tracking import painted_change, painted_colour
from genprop.sampling import sample_latents

log = logging.getLogger(__name__)

__all__ = ["ModelLimitError", "PropagationResult", "Propagator", "load_model"]


class ModelLimitError(GenPropError, ValueError):
    """A window or working size the model cannot take (its positional capacity); the message names the limit."""


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
    tf = int(lm.temporal_factor)
    if tf == 1:
        return num_frames
    return (num_frames - 1 + tf - 1) // tf * tf + 1


def _largest_window(backbone, capacity: PositionalCapacity) -> int | None:
    """The longest window whose padded length fits the capacity (None: unbounded)."""
    if capacity.max_frames is None:
        return None
    n = capacity.max_frames
    while n > 1 and padded_frames(backbone, n) > capacity.max_frames:
        n -= 1
    return n


class Propagator:
    """Propagates first-frame edits with one loaded model.

    Args:
        model (GenPropModel): the model (moved to the configured device); ``model.trained_clip`` (from the
            checkpoint's ``genprop_clip.json``) gives the default window and working area.
        config (PropagationConfig): settings (default ``PropagationConfig()``).

    Raises:
        ModelLimitError: a configured window over the backbone's positional capacity.
    """

    def __init__(self, model, config: PropagationConfig | None = None):
        self.config = config or PropagationConfig()
        self.device = memory.resolve_device(self.config.device)
        self.model = model.eval()
        bb = model.backbone
        if self.config.scheduler is not None:
            if bb.kind != "wan":
                raise ValueError(f"scheduler: the {bb.kind} backbone samples with its own scheduler only")
            bb.config = dataclasses.replace(bb.config, scheduler=self.config.scheduler)
        self.clip = model.trained_clip
        self.capacity = bb.positional_capacity()
        largest = _largest_window(bb, self.capacity)
        trained = f" (it was trained on clips of {self.clip.frames} frames)" if self.clip else ""
        if self.config.window:
            if largest is not None and self.config.window > largest:
                raise ModelLimitError(f"window {self.config.window} is over the model's limit of {largest} frames: "
                                      f"its positional table holds {self.capacity.max_frames}{trained}; "
                                      f"pass --window {largest} or less")
            self.window = self.config.window
        else:
            self.window = self.clip.frames if self.clip else bb.default_window
            if largest is not None:
                self.window = min(self.window, largest)
        if self.config.overlap >= self.window:
            raise ModelLimitError(f"overlap {self.config.overlap} must be smaller than the window ({self.window} "
                                  "frames)")
        if self.config.vae_tiling:
            memory.enable_vae_tiling(bb)
        memory.place(self.model, self.device, self.config.cpu_offload)

    # ------------------------------------------------------------------ geometry and region source
    def frame_map(self, height: int, width: int) -> FrameMap:
        """The working-size map for frames of (height, width): the configured area, else the trained frame's.

        Raises:
            ModelLimitError: a working side over the backbone's positional capacity.
        """
        area = self.config.working_area or (self.clip.height * self.clip.width if self.clip else 0)
        fmap = FrameMap.for_backbone(self.model.backbone, height, width, area)
        h, w = fmap.work_size
        cap = self.capacity
        if (cap.max_height is not None and h > cap.max_height) or (cap.max_width is not None and w > cap.max_width):
            raise ModelLimitError(f"working size {w}x{h} is over the model's limit of {cap.max_width}x"
                                  f"{cap.max_height} pixels (its positional table); pass a smaller --working-area")
        return fmap

    def region_source(self) -> str:
        """"diff", "mpd" or "none": the configured composite, with "auto" resolved (see ``PropagationConfig``)."""
        mode = self.config.composite
        if mode != "auto":
            return mode
        iou = (self.clip.region_iou or {}) if self.clip else {}
        mpd, diff = iou.get("mpd"), iou.get("diff")
        return "mpd" if mpd is not None and diff is not None and mpd > diff else "diff"

    def mask_threshold(self, task: int | None = None) -> float:
        """The MPD mask value that counts as edited: the configured one, else the checkpoint's calibrated one.

        Args:
            task (int | None, default None): the task propagated with; a checkpoint calibrated per task cuts
                its mask at that task's value (``TrainedClip.mpd_task_thresholds``).
        """
        if self.config.mask_threshold is not None:
            return self.config.mask_threshold
        return calibrated_threshold(self.model, task)

    # ------------------------------------------------------------------ one window
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
            cond = model.source_condition(cond, source, first_frame)
        # 2. denoising (the MPD mask of the last step is kept)
        recorder = _MaskRecorder(model, 1)
        task_ids = torch.full((1,), task, dtype=torch.long, device=dev)
        with memory.stage(model, ("denoiser",), dev, off), memory.autocast(dev, cfg.dtype):
            latents = sample_latents(bb, cond, tuple(sce_latents.shape), generator=g, num_steps=cfg.num_steps,
                                     guidance_scale=cfg.guidance, model=recorder, sce_latents=sce_latents,
                                     task_ids=task_ids, num_frames=t_pad)
        # 3. decoding (SVD's temporal VAE in chunks of ``decode_chunk_size`` frames, the pipeline's meaning)
        with memory.stage(model, ("latent_map",), dev, off), memory.autocast(dev, cfg.dtype):
            out = bb.decode_latents(latents.float(), t_pad, cfg.decode_chunk_size)
        return out[:, :t].float().cpu(), recorder.mask[0, :t].float().cpu()

    # ------------------------------------------------------------------ the stream
    def propagate(self, frames, num_frames: int, edited_first_frame: np.ndarray, sink, prompt: str | None = None,
                  task: int = 0, seed: int | None = None, progress: Progress | None = None) -> dict:
        """Propagate the edit through a stream of frames into ``sink``, one window at a time.

        Args:
            frames (Iterable): the input frames in order: (H, W, 3) uint8 arrays, or objects with ``.image``
                (and ``.pts``) such as ``video_stream.DecodedFrame``.
            num_frames (int): frames expected (windows and progress; the stream's end is the truth).
            edited_first_frame (np.ndarray): (H, W, 3) uint8, the edited first frame (the video's size).
            sink: :class:`outputs.ArraySink` or :class:`outputs.FileSink` (``add`` per frame, ``wants``).
            prompt (str | None), task (int, default 0): the prompt and task embedding id.
            seed (int | None): None = ``config.seed`` (window k uses seed + k).
            progress (Progress | None): updated after each window.

        Returns:
            {"frames", "windows", "work_size", "region_source", "drift", "seconds": {stage: s}}.
        """
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        H, W = edited_first_frame.shape[:2]
        fmap = self.frame_map(H, W)
        comp = Compositor((H, W), fmap.work_size, cfg.feather_px)
        source_kind = self.region_source()
        track = task == Task.COLOUR_FILL and "track" in sink.wants
        secs = {"model": 0.0, "composite": 0.0, "write": 0.0, "resize": 0.0}
        clock = time.perf_counter

        def image(item):
            return item if isinstance(item, np.ndarray) else item.image

        def to_working(items):
            t0 = clock()
            out = fmap.to_working([image(i) for i in items])
            secs["resize"] += clock() - t0
            return out

        def sample(src, first, k):
            t0 = clock()
            out = self.sample_window(src, first, prompt, task, seed + k)
            secs["model"] += clock() - t0
            return out

        regions = EditRegion(source_kind, fmap, comp, edited_first_frame, cfg.region_threshold, cfg.region_dilate,
                             self.mask_threshold(task))
        colour = None  # the painted colour, read off frame 0 (colour fill)
        drift_rows, done = [], 0
        for fin in stream_windows(sample, frames, to_working, fmap.image_to_working(edited_first_frame),
                                  self.window, cfg.overlap):
            # 1. the window's finished frames at the working size, and the MPD's mask at the input size if wanted
            t0 = clock()
            gen_u8, src_u8 = to_uint8(fin.video), to_uint8(fin.source)
            want_mpd = source_kind == "mpd" or "mpd" in sink.wants
            mpd = fmap.mask_from_grid(fin.mask) if want_mpd else None  # (m, H, W)
            regions_work = []
            # 2. per frame: the edit region, the composite, the painted change; each frame to the sink
            for j, item in enumerate(fin.items):
                t, native = fin.start + j, image(item)
                region, work = regions(t, native, gen_u8[j], src_u8[j], None if mpd is None else mpd[j])
                regions_work.append(work)
                raw = fmap.frame_from_working(gen_u8[j]) if source_kind == "none" or "raw" in sink.wants else None
                # frame 0's generated layer is the edit itself (G is conditioned on exactly it)
                out = raw if source_kind == "none" else comp(native, gen_u8[j], region,
                                                               edited_first_frame if t == 0 else None)
                tracked = None
                if track:
                    if t == 0:
                        colour = painted_colour(native, edited_first_frame)
                    tracked = (np.zeros((H, W), bool) if colour is None
                               else painted_change(out[None], native[None], colour, cfg.track_threshold)[0])
                t1 = clock()
                secs["composite"] += t1 - t0
                sink.add(OutputFrame(index=t, pts=getattr(item, "pts", None), frame=out, region=region,
                                     raw=raw, mpd=None if mpd is None else mpd[j], tracked=tracked))
                t0 = clock()
                secs["write"] += t0 - t1
            # 3. drift (PSNR_m at the working size outside the region) and progress
            drift_rows.append({"index": fin.window, "start": fin.span[0], "end": fin.span[1],
                               "psnr_m": metrics.psnr_m(gen_u8, src_u8, np.stack(regions_work))})
            done += len(fin.items)
            if progress is not None:
                progress.update(fin.window + 1, done)
        if progress is not None:
            progress.update(len(drift_rows), done, final=True)
        return {"frames": done, "windows": len(drift_rows), "work_size": list(fmap.work_size),
                "region_source": source_kind, "drift": drift_of_windows(drift_rows),
                "seconds": {k: round(v, 3) for k, v in secs.items()}}

    # ------------------------------------------------------------------ entry points
    def run(self, original: np.ndarray, edited_first_frame: np.ndarray, prompt: str | None = None,
            task: int = 0, seed: int | None = None) -> PropagationResult:
        """Propagate the edit of the first frame through ``original``, all in memory (short clips, tests).

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
        since = memory.reset_peak(self.device)
        sink = ArraySink()
        stats = self.propagate(iter(original), len(original), edited_first_frame, sink, prompt, task, seed)
        return sink.result(work_size=tuple(stats["work_size"]), drift=stats["drift"], stats=stats,
                           peak_memory=memory.peak_memory(self.device, since))

    def run_files(self, video_url: str, edited_url: str, out_url: str, *, prompt: str | None = None,
                  task: int = 0, seed: int | None = None, mask_out: str | None = None, raw_out: str | None = None,
                  mpd_out: str | None = None, track_out: str | None = None, decode_timeout_s: float | None = 120.0,
                  progress: bool | Progress = False, quiet: bool = False) -> dict:
        """Propagate a video file into output files, streaming: memory does not grow with the video's length.

        The output keeps the input's frame count, timestamps (variable frame rates too), size, colour tags,
        rotation and audio (copied). Every file is written atomically, the video last.

        Args:
            video_url (str), edited_url (str): the input video and the edited first frame (PNG/JPEG; any URL).
            out_url (str): the propagated video. mask_out (str | None): the edit region (grey mask video).
            prompt (str | None), task (int, default 0), seed (int | None): as :meth:`propagate`.
            raw_out (str | None): the model's frames upsampled, without the composite.
            mpd_out (str | None): the MPD's soft mask. track_out (str | None): the painted change (colour fill).
            decode_timeout_s (float | None, default 120): the longest wait for one decoded frame.
            progress (bool | Progress, default False): report progress on stderr (or into this reporter).
            quiet (bool, default False): with ``progress=True``, print nothing.

        Returns:
            :meth:`propagate`'s stats plus "height", "width", "fps", "peak_memory" and "seconds" (with "total"; the
            files are encoded in a writer thread, so "write" is the time the propagation waited for it).

        Raises:
            DataError: an unreadable video or image, or an edited frame whose size differs from the video's.
            ModelLimitError: a working size the model cannot take.
        """
        from genprop.video_stream import VideoReader

        start = time.perf_counter()
        since = memory.reset_peak(self.device)
        edited = masks.read_image(edited_url)
        with VideoReader(video_url, timeout_s=decode_timeout_s) as reader:
            info = reader.info
            if edited.shape[:2] != (info.height, info.width):
                raise DataError(edited_url, f"size mismatch: the edited first frame is {edited.shape[1]}x"
                                            f"{edited.shape[0]} but the video {video_url} is {info.width}x"
                                            f"{info.height} (width x height); edit a frame of the video's own size")
            self.frame_map(info.height, info.width)  # a size the model cannot take fails before any output
            if progress is True:
                windows = len(window_spans(info.num_frames, self.window, self.config.overlap))
                progress = Progress(storage.basename(video_url), info.num_frames, windows, quiet=quiet)
            sink = BackgroundSink(FileSink(out_url, info, audio_from=reader.local_path, mode=self.config.output_mode,
                                           crf=self.config.crf, mask_out=mask_out, raw_out=raw_out, mpd_out=mpd_out,
                                           track_out=track_out, track=task == Task.COLOUR_FILL,
                                           mpd_threshold=self.mask_threshold(task)))
            try:
                stats = self.propagate(reader, info.num_frames, edited, sink, prompt, task, seed,
                                       progress=progress or None)
                t0 = time.perf_counter()
                sink.close()
                stats["seconds"]["write"] += round(time.perf_counter() - t0, 3)
            except BaseException:
                sink.abort()
                raise
        stats["seconds"]["total"] = round(time.perf_counter() - start, 3)
        return {**stats, "height": info.height, "width": info.width, "fps": str(info.fps),
                "peak_memory": memory.peak_memory(self.device, since)}


def load_model(url: str | None):
    """A GenProp model from a checkpoint directory at any URL (remote files are copied locally first), or an
    untrained GenProp over a local diffusers pipeline folder (Wan2.1 I2V or SVD, as its authors ship it): every
    injection at zero, so it is plain image-to-video of the edited first frame through GenProp's own sampler, with
    the pipeline's window and working size; a way to check weights and set-up before training.

    Args:
        url (str | None): the checkpoint directory (``genprop_config.json`` + ``genprop_trainable.safetensors``,
            and ``genprop_clip.json`` where training wrote it), or a pipeline folder (``model_index.json``).
    """
    from genprop.models import GenPropConfig, build_genprop, load_genprop
    from genprop.models.backbones.pipeline_folder import backbone_config_from_pipeline, is_pipeline_folder
    from genprop.models.genprop_model import CONFIG_NAME, WEIGHTS_NAME
    from genprop.models.trained_clip import CLIP_NAME

    if url is None:
        raise ValueError("no model: pass a checkpoint directory")
    if storage.is_local(url) and is_pipeline_folder(storage.local_path(url)):
        return build_genprop(GenPropConfig(backbone=backbone_config_from_pipeline(storage.local_path(url))))
    if storage.is_local(url):
        return load_genprop(storage.local_path(url))
    with tempfile.TemporaryDirectory(prefix="genprop-model-") as tmp:
        for name in (CONFIG_NAME, WEIGHTS_NAME, CLIP_NAME):
            src = storage.join(url, name)
            if not storage.exists(src):
                if name == CLIP_NAME:
                    continue
                raise DataError(url, f"not a GenProp checkpoint, {name} is missing")
            with storage.local_copy(src) as local:
                storage.put_file(local, os.path.join(tmp, name))
        return load_genprop(tmp)
