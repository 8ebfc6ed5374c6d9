"""Model cost and speed on the node it runs on: parameters, FLOPs, inference throughput/latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from rsearch.spec.recipe import Recipe
from rsearch.train.runtime import autocast, synchronize
from rsearch.train.stages import final_eval_size

INFER_BATCH = 64
"""Batch of the throughput measurement: fixed, so trials with different training batches
compare on the same footing."""

MEASURE_SECONDS = 1.0
"""Time spent timing each batch size (after warmup): long enough for a stable median."""


def params_m(model: nn.Module) -> float:
    """Parameters in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


@torch.no_grad()
def gflops(model: nn.Module, image_size: int) -> float:
    """Multiply-adds of one image's forward pass, in billions.

    FlopCounterMode counts a multiply-add as 2 FLOPs; timm and the papers (ResNet-RS,
    EfficientNet) report multiply-adds as "FLOPs", so the count is halved to match them.
    Works on the meta device, where nothing is computed.
    """
    param = next(model.parameters())
    x = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()  # BatchNorm must not update its statistics
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def forward_flops(model: nn.Module, image_size: int) -> float:
    """FLOPs (2 per multiply-add) of one image's forward pass in eval mode (evaluation)."""
    return gflops(model, image_size) * 2e9


def train_flops(model: nn.Module, image_size: int) -> float:
    """FLOPs (2 per multiply-add) of one image's forward and backward pass in train mode.

    Counted by torch's FlopCounterMode on a batch of two (BatchNorm in train mode needs more
    than one value per channel), halved. Exact for the model and resolution, no timing involved;
    on the meta device nothing is computed and no weight receives a gradient. The weight
    gradient of a grouped convolution is counted per group (see _conv_backward_flop).
    """
    param = next(model.parameters())
    x = torch.zeros(2, 3, image_size, image_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    snapshot = _batchnorm_buffers(model)
    model.train()
    try:
        counter = FlopCounterMode(
            display=False,
            custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop},
        )
        with counter:
            out = model(x)
            grads = torch.autograd.grad(out.float().sum(), [p for p in model.parameters()])
        del grads  # counted, never applied
    finally:
        model.train(was_training)
        _restore_buffers(model, snapshot)
    return counter.get_total_flops() / 2


def epoch_fidelity(
    model: nn.Module, recipe: Recipe, counted: Mapping[int, float] | None = None
) -> list[float]:
    """Each epoch's training compute in full-fidelity epoch equivalents (the `fidelity` unit).

    An epoch at the final resolution on the whole training set counts 1; a data.progressive
    stage's epoch counts its per-image training FLOPs at the stage resolution over those at
    data.image_size, times the stage's share of the data. Image counts do not enter, so the
    training core and the planner (which reads no data) compute the same numbers.

    Args:
        model: the recipe's model (on any device, the meta device included).
        recipe: the recipe whose epochs are counted.
        counted: train_flops per image by resolution, already counted for this model; the
            resolutions it lacks are counted here.
    """
    per_size: dict[int, float] = dict(counted or {})

    def flops(size: int) -> float:
        if size not in per_size:
            per_size[size] = train_flops(model, size)
        return per_size[size]

    full = flops(recipe.data.image_size)
    out = []
    for epoch in range(recipe.epochs):
        size, share = recipe.stage_at(epoch)
        out.append(flops(size) * share / full)
    return out


def _batchnorm_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    # A train-mode pass updates BatchNorm's running statistics; counting must leave them alone.
    return {name: b.clone() for name, b in model.named_buffers() if b.device.type != "meta"}


def _restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for name, value in saved.items():
            buffers[name].copy_(value)


def _conv_backward_flop(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    groups: int,
    output_mask: list[bool],
    out_shape: list[list[int] | None],
    **kwargs: object,
) -> int:
    """FLOPs of a convolution's backward: torch's formula with the groups of the weight gradient.

    torch (2.14) counts a grouped convolution's weight gradient as if the convolution were
    dense, `groups` times too many: 64x for a depthwise convolution over 64 channels, which made
    an EfficientNet's training pass count ~40x its forward. The input gradient's count is
    torch's (it already uses the grouped weight's shape).
    """

    def swap(shape: list[int]) -> list[int]:
        return [shape[1], shape[0], *shape[2:]]

    flops = 0
    if output_mask[0] and out_shape[0] is not None:
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1] and out_shape[1] is not None:
        grad_weight = swap(out_shape[1])
        if transposed:  # the weight gradient of a transposed conv is conv(grad_out, input)
            dense = conv_flop_count(swap(grad_out_shape), swap(x_shape), grad_weight)
        else:  # ... of a conv, conv(input, grad_out)
            dense = conv_flop_count(swap(x_shape), swap(grad_out_shape), grad_weight)
        flops += dense // groups
    return flops


def cost(model: nn.Module, image_size: int) -> dict[str, float]:
    """{"params_m", "gflops"} of a model at a resolution."""
    return {"params_m": params_m(model), "gflops": gflops(model, image_size)}


def model_cost(recipe: Recipe) -> dict[str, float]:
    """{"params_m", "gflops"} of the recipe's model at its final evaluation resolution
    (data.eval_rule's for data.image_size), untrained.

    The model is built on the meta device: no memory for weights, no initialisation, no
    data read beyond counting an image folder's classes. Used to reject over-budget trials
    before they train.

    Raises:
        TrainInputError: the model cannot be built (unknown name, bad scaling, ...).
    """
    from rsearch.train.model import build_model  # deferred: model imports checkpoint/timm
    from rsearch.train.sources import count_classes

    with torch.device("meta"):
        model = build_model(recipe, count_classes(recipe.data), load_weights=False)
    return cost(model, final_eval_size(recipe.data))


def _median_seconds(
    model: nn.Module,
    x: torch.Tensor,
    dtype: torch.dtype | None,
    warmup: int,
    min_iters: int,
    budget_s: float,
) -> float:
    with torch.inference_mode(), autocast(x.device, dtype):
        for _ in range(warmup):  # first calls pay for allocation and kernel selection
            model(x)
        synchronize(x.device)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < budget_s:
            tick = time.perf_counter()
            model(x)
            synchronize(x.device)
            times.append(time.perf_counter() - tick)
    return statistics.median(times)


def inference_speed(
    model: nn.Module,
    image_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
    batch: int = INFER_BATCH,
    budget_s: float | None = None,
) -> dict[str, float]:
    """Inference throughput and latency in eval mode, at the training precision and layout.

    Each measurement runs 2 warmup passes, then passes until budget_s (default
    MEASURE_SECONDS) has elapsed (at least 3) and keeps the median.

    Returns:
        infer_images_per_s (batch images per median second), infer_latency_ms (batch 1),
        infer_latency_ms_batch (the whole batch).
    """
    gen = torch.Generator().manual_seed(0)  # leaves the training generators untouched
    layout = torch.channels_last if channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    try:
        seconds = {}
        for n in (1, batch):
            x = torch.randn(n, 3, image_size, image_size, generator=gen)
            x = x.to(device).contiguous(memory_format=layout)
            budget = MEASURE_SECONDS if budget_s is None else budget_s
            seconds[n] = _median_seconds(model, x, dtype, 2, 3, budget)
    finally:
        model.train(was_training)
    return {
        "infer_images_per_s": batch / seconds[batch],
        "infer_latency_ms": seconds[1] * 1e3,
        "infer_latency_ms_batch": seconds[batch] * 1e3,
    }
