"""From decoded shard samples to the training batch contract.

The batch contract is documented in ``genprop.training.objectives``. Samples arrive routed by the shard
job (SCE input, G's conditioning, target, mask): nothing here loads a text or image encoder.
"""

from __future__ import annotations


import numpy as np
import torch

from genprop.shards.sample import decode_sample


def decode_training_sample(raw: dict) -> dict:
    """Decode a raw sample (member name -> bytes) into the arrays training needs.

    Raises ``KeyError``/``ValueError`` on a sample that lacks members or does not parse (the stream skips it).
    """
    s = decode_sample(raw)
    for name in ("sce_latents", "target_latents", "mask"):
        if name not in s:
            raise KeyError(f"sample {s['key']} lacks {name}.npy")
    return s


def collate(samples: list[dict], device: torch.device | str = "cpu") -> dict:
    """Stack decoded samples into a batch (fp32 tensors on ``device``).

    Args:
        samples (list[dict]): from :func:`decode_training_sample`.
        device (torch.device | str, default "cpu"): where the tensors go.

    Returns:
        dict: ``target_latents``, ``sce_latents`` (B, T_lat, C, h, w); ``cond`` {name: (B, ...)}; ``mask``
        (B, T, H, W) float; ``task_id`` (B,) long; ``keys`` list[str].
    """
    def stack(arrays):
        return torch.from_numpy(np.stack([np.asarray(a, dtype=np.float32) for a in arrays])).to(device)

    names = sorted(samples[0]["condition"])
    for s in samples[1:]:
        if sorted(s["condition"]) != names:
            raise ValueError(f"samples {samples[0]['key']} and {s['key']} carry different conditions")
    return {
        "target_latents": stack([s["target_latents"] for s in samples]),
        "sce_latents": stack([s["sce_latents"] for s in samples]),
        "cond": {n: stack([s["condition"][n] for s in samples]) for n in names},
        "mask": stack([s["mask"] for s in samples]),
        "task_id": torch.tensor([int(s["task_id"]) for s in samples], dtype=torch.long, device=device),
        "keys": [s["key"] for s in samples],
    }
