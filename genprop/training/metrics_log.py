"""Where a run's per-step metrics go: a JSONL file (one object a step), TensorBoard where installed, a progress line."""

from __future__ import annotations

import json
import os
import time


class MetricsLog:
    """Appends each step's metrics to ``<directory>/metrics.jsonl`` and, when available, TensorBoard events.

    Args:
        directory (str): a local directory (rank 0's run folder; the caller uploads it).
        total_steps (int): for the progress line.
        previous (str | None): JSONL text of an earlier attempt; lines with ``step`` <= ``resume_step`` are kept,
            so a resumed run's file has each step once.
        resume_step (int, default 0): the step training resumes after.
    """

    def __init__(self, directory: str, total_steps: int, previous: str | None = None, resume_step: int = 0):
        os.makedirs(directory, exist_ok=True)
        self.directory, self.total = directory, total_steps
        self.path = os.path.join(directory, "metrics.jsonl")
        kept = []
        for line in (previous or "").splitlines():
            if line.strip() and json.loads(line).get("step", 0) <= resume_step:
                kept.append(line)
        with open(self.path, "w") as f:
            f.write("".join(k + "\n" for k in kept))
        self.tb = None
        try:  # TensorBoard where installed (tensorboardX, or torch's writer with the tensorboard package)
            from tensorboardX import SummaryWriter
        except ImportError:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
        if SummaryWriter is not None:
            self.tb = SummaryWriter(os.path.join(directory, "tensorboard"))
        self.t0 = time.monotonic()

    def log(self, metrics: dict) -> None:
        """Append one step's metrics (``step`` included)."""
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics, sort_keys=True) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, metrics["step"])
            self.tb.flush()

    def progress_line(self, m: dict) -> str:
        """``[train] step 3/10 loss 0.1234 lr 1.0e-03 gnorm 0.52 12.3 samples/s wait 1.2% skipped 0 ...``"""
        extra = f" psnr {m['val_psnr']:.2f} dB" if "val_psnr" in m else ""
        return (f"[train] step {m['step']}/{self.total} loss {m['loss']:.4f} lr {m['lr']:.2e} gnorm "
                f"{m['grad_norm']:.3g} {m['samples_per_s']:.2f} samples/s wait {100 * m['data_wait_frac']:.1f}% "
                f"skipped {int(m.get('skipped_samples', 0))} elapsed {time.monotonic() - self.t0:.0f}s{extra}")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
