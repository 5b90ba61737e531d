"""Training randomness that does not depend on how a batch is split: one generator per sample and step.

Every random draw of a training step (the diffusion time and noise, the condition drop, the task drop) comes
from a generator seeded by ``(run seed, sample key, step)``. So a sample gets the same draws whichever worker,
micro-batch or batch position it lands in, and a run on W workers computes what one worker computes on the same
global batch. Draws are made on the CPU and moved, so a CUDA run draws what a CPU run draws.

Code that draws takes a ``torch.Generator`` (one stream for the whole batch, as inference and the procedural
trainers use) or a :class:`SampleDraws`, through :func:`uniform` and :func:`normal`.
"""

from __future__ import annotations

import hashlib

import torch


def sample_seed(seed: int, key: str, step: int) -> int:
    """The 63-bit seed of sample ``key`` at training ``step`` of a run seeded ``seed``."""
    digest = hashlib.blake2b(f"{seed}/{key}/{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class SampleDraws:
    """Per-sample generators for one micro-batch: row ``i`` of every draw comes from sample ``i``'s generator.

    Args:
        seed (int): the run's seed.
        keys (list[str]): the samples' keys, in batch order.
        step (int): the training step.
    """

    def __init__(self, seed: int, keys: list[str], step: int):
        self.keys = list(keys)
        self._generators = [torch.Generator().manual_seed(sample_seed(seed, k, step)) for k in self.keys]

    def __len__(self) -> int:
        return len(self._generators)

    def _draw(self, fn, shape, device, dtype) -> torch.Tensor:
        if shape[0] != len(self):
            raise ValueError(f"a draw of shape {tuple(shape)} for a batch of {len(self)} samples")
        rows = [fn(tuple(shape[1:]), generator=g, dtype=dtype or torch.float32) for g in self._generators]
        return torch.stack(rows).to(device)

    def rand(self, shape, device=None, dtype=None) -> torch.Tensor:
        """Uniform [0, 1) of ``shape`` (batch first)."""
        return self._draw(torch.rand, shape, device, dtype)

    def randn(self, shape, device=None, dtype=None) -> torch.Tensor:
        """Standard normal of ``shape`` (batch first)."""
        return self._draw(torch.randn, shape, device, dtype)


def uniform(generator: torch.Generator | SampleDraws | None, shape, device=None, dtype=None) -> torch.Tensor:
    """``torch.rand(shape)`` from a generator, or one row per sample from :class:`SampleDraws`."""
    if isinstance(generator, SampleDraws):
        return generator.rand(shape, device, dtype)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def normal(generator: torch.Generator | SampleDraws | None, shape, device=None, dtype=None) -> torch.Tensor:
    """``torch.randn(shape)`` from a generator, or one row per sample from :class:`SampleDraws`."""
    if isinstance(generator, SampleDraws):
        return generator.randn(shape, device, dtype)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)
