"""Where and how a run executes: device, CPU threads, autocast precision, seeds, determinism."""

from __future__ import annotations

import contextlib
import functools
import os
import random
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rsearch.train.errors import TrainInputError

_AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def device_type(requested: Literal["auto", "cpu", "cuda"]) -> str:
    """Resolve the recipe's device choice to 'cpu' or 'cuda'.

    Args:
        requested: auto picks CUDA when a GPU is visible, else the CPU.

    Raises:
        TrainInputError: cuda was asked for on a machine without a visible GPU.
    """
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainInputError("device 'cuda' was requested but no CUDA GPU is visible; use 'auto'")
    return requested


def make_device(kind: str, local_rank: int) -> torch.device:
    """The torch device of this process (one GPU per local rank under DDP)."""
    if kind == "cuda":
        index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """'cpu', or the CUDA device's name (e.g. 'NVIDIA A100-SXM4-80GB')."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return device.type


def cpu_threads(threads: int | None = None) -> int:
    """CPU threads this process uses: `threads` when given, else its CPUs split among local ranks.

    Ray workers start with OMP_NUM_THREADS=1, which halves CPU training speed, so the thread
    count is always set explicitly: from what the caller says the process holds, or from the
    process's CPU affinity.

    Raises:
        TrainInputError: threads is given and is not a positive integer.
    """
    if threads is not None:
        if threads < 1:
            raise TrainInputError(f"threads must be a positive integer, got {threads!r}")
        return threads
    held = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # Ranks started together on one node (torchrun) share the node's CPUs.
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, (held or 1) // max(1, local_ranks))


def configure_threads(device: torch.device, threads: int | None = None) -> None:
    """Size torch's intra-op pool to cpu_threads(threads) (CPU runs only)."""
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(threads))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision name on a device (None for fp32).

    fp16 on the CPU is refused rather than silently replaced: a search must never record
    results under a precision they were not trained in.

    Raises:
        TrainInputError: fp16 on a CPU.
    """
    dtype = _AUTOCAST_DTYPES[precision]
    if dtype is torch.float16 and device.type != "cuda":
        raise TrainInputError("precision 'fp16' needs a CUDA GPU; on a CPU use 'bf16' or 'fp32'")
    return dtype


@functools.cache
def cpu_bf16_strided_conv_is_wrong(trials: int = 8) -> bool:
    """Probe a PyTorch CPU bug (seen in torch 2.14): wrong bf16 conv weight gradients.

    Under bf16 autocast on the CPU, a strided 3x3 convolution over a map one pixel wide gets
    garbage (often inf/NaN) weight gradients, though not every time (it seems to read
    uninitialised memory), so several trials run. The probe compares with fp32 once per
    process, so a fixed torch release lifts the refusal by itself.
    """
    gen = torch.Generator().manual_seed(0)
    return any(_wrong_bf16_grad(gen) for _ in range(trials))


def _wrong_bf16_grad(gen: torch.Generator) -> bool:
    x = torch.randn(16, 64, 1, 1, generator=gen).relu()
    w = torch.randn(64, 64, 3, 3, generator=gen)
    grads = []
    for dtype in (torch.bfloat16, None):
        weight = w.clone().requires_grad_()
        with autocast(torch.device("cpu"), dtype):
            out = F.conv2d(x.clone().requires_grad_(), weight, stride=2, padding=1)
        out.float().sum().backward()
        grads.append(weight.grad)
    bf16, fp32 = grads
    assert bf16 is not None and fp32 is not None
    return not bool((bf16 - fp32).abs().max() < 0.05 * fp32.abs().max())


def thin_strided_convs(model: nn.Module, image_size: int) -> list[str]:
    """Names of strided convolutions (kernel wider than 1) that see 1-pixel-wide maps."""
    found: list[str] = []

    def hook(name: str) -> Any:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if inputs[0].shape[-1] == 1:
                found.append(name)

        return record

    convs = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.stride[1] > 1 and m.kernel_size[1] > 1
    ]
    handles = [m.register_forward_pre_hook(hook(n)) for n, m in convs]
    param = next(model.parameters())
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=param.device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return found


def check_cpu_bf16(model: nn.Module, image_size: int) -> None:
    """Refuse bf16 training on the CPU where the PyTorch bug above would corrupt gradients.

    Raises:
        TrainInputError: the model has a strided conv over 1-pixel-wide maps at image_size
            and this torch computes its bf16 gradients wrongly.
    """
    thin = thin_strided_convs(model, image_size)
    if thin and cpu_bf16_strided_conv_is_wrong():
        raise TrainInputError(
            f"precision 'bf16' on the CPU: this PyTorch computes wrong gradients for strided "
            f"convolutions over 1-pixel-wide maps, and at {image_size} px {thin[:3]} see such "
            "maps; use precision 'fp32' or larger training sizes (data.image_size and any "
            "data.progressive stage's image_size)"
        )


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """An autocast context for dtype, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Use deterministic kernels inside the block when enabled, restoring the old setting.

    The setting is process-wide, so it is put back for whatever the process runs next.
    """
    before = torch.are_deterministic_algorithms_enabled()
    before_benchmark = torch.backends.cudnn.benchmark
    if enabled:
        # cuBLAS needs a fixed workspace to be deterministic; harmless on the CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = before_benchmark


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock timings include it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
