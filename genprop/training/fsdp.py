"""FSDP for large backbones: the frozen backbone replicated (bf16 on GPU), the trainable parts sharded in fp32.

GenProp trains the SCE, MPD and task embeddings; the backbone G is frozen. Sharding G would only save its
(bf16, gradient-free) weights, while the trainable copy of N blocks plus AdamW's two fp32 moments is what
outgrows a GPU at 14B. So ``shard_model`` casts G to bf16 (on CUDA; CPU runs keep fp32 because the trainer
autocasts only on CUDA) and keeps it out of FSDP (``ignored_params``) unless asked to shard its blocks too, and
shards each trainable part with FSDP2's ``fully_shard`` in fp32: each SCE block its own unit (gathered only while
it runs: a 14B SCE of 10 blocks is 17 GiB of fp32 weights, too much to gather at once), the SCE's remaining
layers, the MPD and the task embeddings one unit each. For ``i2v`` every denoiser block is sharded and the frozen
encoders ignored.
Parameter names are unchanged (FSDP2 swaps parameters for DTensors in place), so the EMA, checkpoints and
``save_pretrained`` keep their keys; :func:`full_tensor` / :func:`copy_into` convert at those edges.
Collective: every rank must call :func:`full_tensor` on the same tensors in the same order.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def is_sharded(t) -> bool:
    """True for a DTensor (a parameter or state FSDP2 sharded)."""
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor (an all-gather: call on every rank), or ``t`` itself."""
    return t.full_tensor() if is_sharded(t) else t


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """``dst.copy_(src)`` where ``dst`` may be a DTensor shard and ``src`` the whole tensor."""
    if is_sharded(dst):
        from torch.distributed.tensor import distribute_tensor

        src = distribute_tensor(src.to(dst.device, dst.dtype), dst.device_mesh, dst.placements)
    dst.copy_(src.to(dst.device, dst.dtype) if not is_sharded(src) else src)


def reshard_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """After loading a whole (gathered) optimiser state: shard each moment like its DTensor parameter."""
    from torch.distributed.tensor import distribute_tensor

    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for k, v in state.items():
                if is_sharded(p) and torch.is_tensor(v) and not is_sharded(v) and v.shape == p.shape:
                    state[k] = distribute_tensor(v.to(p.device), p.device_mesh, p.placements)


def own_mesh(device: torch.device):
    """A device mesh of this process alone: FSDP over it shards nothing and exchanges no gradient (the
    ``gradient_sync: false`` control; every process must call it, as it creates one group per rank)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device.type, (dist.get_world_size(), 1), mesh_dim_names=("replica", "shard"))["shard"]


def shard_model(model: nn.Module, objective: str, device: torch.device, shard_backbone: bool = False,
                mesh=None) -> nn.Module:
    """Wrap ``model`` in place for FSDP and return it (requires an initialised process group).

    Args:
        model (nn.Module): a ``GenPropModel`` (``genprop``) or a backbone adapter (``i2v``), on ``device``.
        objective (str): "genprop" or "i2v".
        device (torch.device): the worker's device (bf16 backbone on CUDA only).
        shard_backbone (bool, default False): ``genprop`` only: shard the frozen denoiser's blocks too, one FSDP
            unit per block, gathered while that block runs (1/N of G's weights per GPU plus a gathered block, for
            GPUs that cannot hold a replicated bf16 backbone; docs/scale.md); otherwise G is replicated.
        mesh (DeviceMesh | None, default None): the mesh to shard over; None = every process.
    """
    from functools import partial

    from torch.distributed.fsdp import fully_shard

    fully_shard = partial(fully_shard, mesh=mesh)

    if objective == "genprop":
        backbone = model.backbone
        if device.type == "cuda":
            backbone.to(torch.bfloat16)  # frozen: no optimiser state, no gradients; half the memory
        ignored = set(backbone.parameters())
        if shard_backbone:
            for block in backbone.denoiser_blocks():
                fully_shard(block)
            ignored -= {p for block in backbone.denoiser_blocks() for p in block.parameters()}
        for block in model.sce.blocks:
            fully_shard(block)
        for part in (model.sce, model.mpd, model.task_embedding):
            fully_shard(part)
        fully_shard(model, ignored_params=ignored)
        return model
    frozen = [model.latent_map, *model.condition_encoders()]
    ignored = {p for m in frozen for p in m.parameters()}
    for block in model.denoiser_blocks():
        fully_shard(block)
    fully_shard(model, ignored_params=ignored)
    return model
