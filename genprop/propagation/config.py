"""Settings of a propagation run (one frozen dataclass, saved beside batch outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genprop.propagation.tracking import EDIT_DIFF_THRESHOLD

OUTPUT_MODES = ("crf", "lossless", "rgb-lossless")
COMPOSITES = ("auto", "diff", "mpd", "none")


@dataclass(frozen=True)
class PropagationConfig:
    """How to propagate: working size, windows, sampling and memory controls.

    Args:
        working_area (int, default 0): pixels of the working frame (aspect kept); 0 = the area of the frames the
            checkpoint was trained at (``genprop_clip.json``), else the backbone's own.
        window (int, default 0): frames per window; 0 = the checkpoint's training clip length, else the backbone's
            clip length (Wan 81, SVD its U-Net's), at most its positional capacity.
        overlap (int, default 2): frames shared by consecutive windows (blended linearly).
        num_steps (int | None, default None): denoising steps; None = the backbone's default.
        guidance (float | None, default None): CFG scale; None = the backbone's default (Wan 5, SVD ramp 1-3).
        seed (int, default 0): window k uses seed + k.
        dtype (str, default "float32"): "float32" or "bfloat16" (autocast for the denoiser and the VAE).
        decode_chunk_size (int | None, default None): frames per call of SVD's temporal VAE decoder (the
            pipeline's ``decode_chunk_size``); None = the backbone's own (``SVDBackboneConfig.decode_chunk_size``,
            14). Wan's causal VAE and the pixel-unshuffle map decode frame by frame whatever it is.
        scheduler (str | None, default None): a Wan model's sampler scheduler ("auto": its pipeline folder's,
            "flow_match_euler", "unipc"); None = the one its checkpoint records (``WanBackboneConfig.scheduler``).
        vae_tiling (bool, default False): ``vae.enable_tiling()`` where the VAE has it.
        cpu_offload (bool, default False): keep components on the CPU and move each to the device only for
            its stage (encoders, denoiser, decoder).
        device (str, default "auto"): "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
        track_threshold (int, default 24): max-channel change from the source that a tracked pixel needs
            (``propagation.tracking.painted_change``; 24 is what counts as edited in the first frame).
        mask_threshold (float | None, default None): MPD mask value that counts as "edited" (the composite's
            "mpd" region and the mask video of it); None = the value the checkpoint was calibrated at
            (``TrainedClip.mpd_threshold``), else 0.5.
        output_mode (str, default "crf"): how the propagated video is encoded: "crf" (H.264 at ``crf``, the input's
            colour tags), "lossless" (qp 0, yuv444p: off by up to 2 levels from RGB rounding) or "rgb-lossless"
            (libx264rgb qp 0: the RGB frames exactly). Evaluation writes losslessly, where the codec's loss would
            be scored as the model's (at 32x32 it cost the procedural GenProp 3 dB and 0.14 tracking IoU).
        crf (int, default 12): x264 constant rate factor of the "crf" mode.
        composite (str, default "auto"): the output outside the edit. "none": the model's frames upsampled to the
            input size. Otherwise the input's own pixels outside a per-frame edit region and the generated content
            inside, with a feathered seam (``propagation.composite``); the region comes from "diff" (where the
            generated frames differ from the source at the working size) or "mpd" (the MPD's mask); "auto" takes
            the MPD where the checkpoint records a validation IoU for it above the diff region's, else "diff".
        region_threshold (int, default 24): max-channel difference (0-255) from the source at the working size
            that puts a working pixel in the "diff" region (:data:`EDIT_DIFF_THRESHOLD`, the first frame's rule).
        region_dilate (int, default 1): working pixels the region grows by (covers pixels the edit touches in part).
        feather_px (int, default 6): width in input pixels of the seam's blend, outside the region (<= 8).
    """

    working_area: int = 0
    window: int = 0
    overlap: int = 2
    num_steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    dtype: str = "float32"
    decode_chunk_size: int | None = None
    scheduler: str | None = None
    vae_tiling: bool = False
    cpu_offload: bool = False
    device: str = "auto"
    track_threshold: int = EDIT_DIFF_THRESHOLD
    mask_threshold: float | None = None
    output_mode: str = "crf"
    crf: int = 12
    composite: str = "auto"
    region_threshold: int = EDIT_DIFF_THRESHOLD
    region_dilate: int = 1
    feather_px: int = 6

    # fields of earlier config shapes -> where they live now (a config in the old shape fails naming them)
    MOVED: ClassVar[dict[str, str]] = {"decode_chunk_frames": "decode_chunk_size (SVD's decoder frames per call)"}

    def __post_init__(self):
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.window and self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than the window ({self.window})")
        if self.overlap < 1:
            raise ValueError(f"overlap must be >= 1 (a window starts from a generated frame), got {self.overlap}")
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {self.output_mode!r}")
        if self.composite not in COMPOSITES:
            raise ValueError(f"composite must be one of {COMPOSITES}, got {self.composite!r}")
        if not 0 <= self.feather_px <= 8 or self.region_dilate < 0 or not 0 <= self.region_threshold <= 255:
            raise ValueError(f"need 0 <= feather_px <= 8, region_dilate >= 0 and 0 <= region_threshold <= 255; got "
                             f"{self.feather_px}, {self.region_dilate}, {self.region_threshold}")
        if self.mask_threshold is not None and not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"mask_threshold must be inside (0, 1), got {self.mask_threshold}")
        if self.decode_chunk_size is not None and self.decode_chunk_size < 1:
            raise ValueError(f"decode_chunk_size must be >= 1, got {self.decode_chunk_size}")

    @classmethod
    def tiny(cls) -> "PropagationConfig":
        """CPU tests: 32x32 working frames, windows of 9 frames, 2 steps."""
        return cls(working_area=32 * 32, window=9, overlap=2, num_steps=2)
