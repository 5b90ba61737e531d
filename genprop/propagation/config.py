"""Settings of a propagation run (one frozen dataclass, saved beside batch outputs)."""

from __future__ import annotations

from dataclasses import dataclass

from genprop.propagation.tracking import EDIT_DIFF_THRESHOLD

# ``--task`` names -> the trained task embeddings (0 default, 1 copy-and-paste, 2 mask-and-fill,
# 3 colour fill). "edit" (replace an object or the background) has no augmentation of its own: the
# default embedding, as "auto".
TASK_IDS = {"auto": 0, "edit": 0, "insert": 1, "remove": 2, "track": 3}
TRACK_TASK_ID = TASK_IDS["track"]


def task_id(task: str) -> int:
    """The task embedding id of a ``--task`` name (auto, edit, remove, insert, track).

    Args:
        task (str): the name.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    try:
        return TASK_IDS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}") from None


@dataclass(frozen=True)
class PropagationConfig:
    """How to propagate: working size, windows, sampling and memory controls.

    Args:
        working_area (int, default 0): pixels of the working frame (aspect kept); 0 = the backbone's own.
        window (int, default 0): frames per window; 0 = the backbone's clip length (Wan 81, SVD its U-Net's).
        overlap (int, default 2): frames shared by consecutive windows (blended linearly).
        num_steps (int | None, default None): denoising steps; None = the backbone's default.
        guidance (float | None, default None): CFG scale; None = the backbone's default (Wan 5, SVD ramp 1-3).
        seed (int, default 0): window k uses seed + k.
        dtype (str, default "float32"): "float32" or "bfloat16" (autocast for the denoiser and the VAE).
        decode_chunk_frames (int, default 8): latent frames decoded at once (maps without time compression;
            Wan's causal VAE already decodes one latent frame at a time).
        vae_tiling (bool, default False): ``vae.enable_tiling()`` where the VAE has it.
        cpu_offload (bool, default False): keep components on the CPU and move each to the device only for
            its stage (encoders, denoiser, decoder).
        device (str, default "auto"): "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
        track_threshold (int, default 24): max-channel change from the source that a tracked pixel needs
            (``propagation.tracking.painted_change``; 24 is what counts as edited in the first frame).
        mask_threshold (float, default 0.5): MPD mask value that counts as "edited" (drift, mask videos).
        lossless_output (bool, default False): write the propagated video losslessly (qp 0, yuv444p) instead of
            at CRF 12; for evaluation, where the codec's loss would be scored as the model's (at 32x32 it cost
            the procedural GenProp 3 dB and 0.14 tracking IoU).
    """

    working_area: int = 0
    window: int = 0
    overlap: int = 2
    num_steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    dtype: str = "float32"
    decode_chunk_frames: int = 8
    vae_tiling: bool = False
    cpu_offload: bool = False
    device: str = "auto"
    track_threshold: int = EDIT_DIFF_THRESHOLD
    mask_threshold: float = 0.5
    lossless_output: bool = False

    def __post_init__(self):
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.window and self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than the window ({self.window})")
        if self.overlap < 1:
            raise ValueError(f"overlap must be >= 1 (a window starts from a generated frame), got {self.overlap}")
        if self.decode_chunk_frames < 1:
            raise ValueError(f"decode_chunk_frames must be >= 1, got {self.decode_chunk_frames}")

    @classmethod
    def tiny(cls) -> "PropagationConfig":
        """CPU tests: 32x32 working frames, windows of 9 frames, 2 steps."""
        return cls(working_area=32 * 32, window=9, overlap=2, num_steps=2)
