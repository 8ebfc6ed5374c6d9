"""torch.distributed plumbing: joining a process group and reducing metrics across ranks.

A process group made by someone else (Ray Train calls init_process_group before the training
function runs) is used as it is; otherwise WORLD_SIZE > 1 with MASTER_ADDR set (torchrun, or a
hand-made launch) makes fit create one, and destroy it when it returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from rsearch.train.errors import TrainInputError


@dataclass(frozen=True)
class DistContext:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False
    """True when fit created the process group and so must destroy it."""

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as e:
        raise TrainInputError(
            f"environment variable {name} must be an integer, got {value!r}"
        ) from e


def setup_distributed(device_type: str) -> DistContext:
    """Join (or, when the environment asks for it, create) the process group.

    Args:
        device_type: 'cpu' (gloo backend) or 'cuda' (nccl backend) for a group fit creates.
    """
    local_rank = _env_int("LOCAL_RANK", 0)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 or not os.environ.get("MASTER_ADDR"):
        return DistContext()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=_env_int("RANK", 0), world_size=world)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)


def teardown_distributed(ctx: DistContext) -> None:
    """Destroy the process group if fit created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    # gloo reduces CPU tensors, nccl only CUDA ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(values: torch.Tensor, ctx: DistContext, op: str = "sum") -> torch.Tensor:
    """Sum (or max) a tensor of values over all ranks; returns a CPU float64 tensor.

    Args:
        values: one value per metric, on any device.
        ctx: the distributed context; a single process returns the values unchanged.
        op: 'sum' or 'max'.
    """
    out = values.detach().to(torch.float64)
    if not ctx.enabled:
        return out.cpu()
    out = out.to(_collective_device())
    dist.all_reduce(out, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return out.cpu()


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's obj on every rank (identity for a single process)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's obj, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def average_batchnorm(model: torch.nn.Module, ctx: DistContext) -> None:
    """Average BatchNorm running statistics over ranks so every rank evaluates one model.

    DDP broadcasts buffers only at the start of each forward, so the statistics drift apart
    during the last training step.
    """
    if not ctx.enabled:
        return
    from timm.utils import distribute_bn

    distribute_bn(model, ctx.world_size, reduce=True)
