"""Memory controls a GPU user expects: device and dtype, VAE tiling, model CPU offload, peak memory.

bf16 runs the denoiser and the VAE under ``torch.autocast`` (the SCE stays fp32 inside it, see
``GenPropConfig.fp32_sce_under_autocast``); weights stay fp32, so one loaded model serves both.
CPU offload keeps the big components (text/image encoders, latent map, denoiser with SCE and MPD)
on the CPU and moves each to the device only for its stage, as diffusers'
``enable_model_cpu_offload`` does.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys

import torch

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available else cpu; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, dtype: str):
    """An autocast context for ``dtype`` ("bfloat16") on ``device``; a no-op for "float32"."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def enable_vae_tiling(backbone) -> bool:
    """Turn on the VAE's tiled encode/decode where it has one; returns whether it did."""
    if backbone.latent_map.enable_tiling():
        return True
    log.warning("VAE tiling requested but the %s latent map has no tiled VAE; ignored",
                type(backbone.latent_map).__name__)
    return False


def offload_groups(model) -> dict[str, list[torch.nn.Module]]:
    """The big components of a GenProp model per stage: "encoders", "latent_map", "denoiser"."""
    bb = model.backbone
    return {"encoders": bb.condition_encoders(), "latent_map": [bb.latent_map],
            "denoiser": [bb.denoiser, model.sce, model.mpd, model.task_embedding]}


def place(model, device: torch.device, cpu_offload: bool) -> None:
    """Put ``model`` on ``device``; with offload the big components go back to the CPU until their stage."""
    model.to(device)
    if cpu_offload and device.type != "cpu":
        for group in offload_groups(model).values():
            for m in group:
                m.to("cpu")


@contextlib.contextmanager
def stage(model, names: tuple[str, ...], device: torch.device, cpu_offload: bool):
    """Within the block the named component groups are on ``device``; with offload they return to the CPU."""
    if not cpu_offload or device.type == "cpu":
        yield
        return
    groups = offload_groups(model)
    modules = [m for n in names for m in groups[n]]
    for m in modules:
        m.to(device)
    try:
        yield
    finally:
        for m in modules:
            m.to("cpu")
        torch.cuda.empty_cache()


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: writing 5 to /proc/self/clear_refs resets VmHWM); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> tuple[int, bool]:
    """(peak RSS in bytes, whether it is the peak since the last reset) — VmHWM, else getrusage's lifetime peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, True
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(rss if sys.platform == "darwin" else rss * 1024), False


def reset_peak(device: torch.device) -> bool:
    """Start a new peak-memory measurement (one row of a batch): CUDA's peak stats, and the process's peak RSS.

    Returns:
        whether the CPU's peak RSS was reset (False where /proc/self/clear_refs is not writable: the peak is then
        the process's lifetime peak, and :func:`peak_memory` says so).
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return _reset_peak_rss()


def peak_memory(device: torch.device, since_reset: bool = True) -> dict:
    """The peak memory since :func:`reset_peak`: CUDA ``max_memory_allocated`` on a GPU, and the peak RSS.

    Args:
        device (torch.device): the run's device.
        since_reset (bool, default True): what :func:`reset_peak` returned (False: the RSS is the lifetime peak).

    Returns:
        {"device": "cuda:0" | "cpu", "kind": "cuda_max_allocated" | "peak_rss" | "process_peak_rss",
        "bytes": int (the device's peak on a GPU, else the RSS), "rss_bytes": int}; "process_peak_rss" marks an
        RSS that could not be reset (the process's running maximum).
    """
    rss, hwm = _peak_rss_bytes()
    kind = "peak_rss" if hwm and since_reset else "process_peak_rss"
    if device.type == "cuda":
        return {"device": str(device), "kind": "cuda_max_allocated",
                "bytes": int(torch.cuda.max_memory_allocated(device)), "rss_bytes": rss}
    return {"device": "cpu", "kind": kind, "bytes": rss, "rss_bytes": rss}
