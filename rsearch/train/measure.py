"""Model cost and speed on the node it runs on: parameters, FLOPs, inference throughput/latency.

Inference speed protocol (inference_speed): the model in eval mode, under torch.inference_mode,
at the training precision (autocast dtype) and memory layout, with the CPU threads torch is set
to, on random images at the final evaluation resolution. Batch 1 and then INFER_BATCH are
timed, each so:

1. An untimed warm-up window as long as a timed one, of WARMUP_PASSES passes at least
   (allocation, kernel selection, cold caches).
2. REPEATS timed windows of MEASURE_SECONDS / REPEATS each (at least MIN_PASSES passes); each
   pass is synchronised with the device, and a window keeps the median of its pass times.
3. The reported time is the median of the windows' medians; the spread is their coefficient of
   variation (sample standard deviation over the mean, in %).

Throughput is INFER_BATCH over the median batched time; latency the median batch-1 time.
Noise only ever slows a pass, and a median of medians shrugs off a disturbed window or two;
the spread says how steady the node was. The numbers are only as good as the quiet around
them: rsearch.train.speed measures once per architecture and hardware, pausing the node's
other trials meanwhile, and caches the result.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import final_eval_size
from rsearch.train.quant import float_layers, gbops, model_mbit, quantiser_parameters
from rsearch.train.runtime import autocast, synchronize

INFER_BATCH = 64
"""Batch of the throughput measurement: fixed, so trials with different training batches
compare on the same footing."""

MEASURE_SECONDS = 1.0
"""Timed seconds per batch size (after the warm-up), shared out among the REPEATS windows."""

REPEATS = 5
"""Timed windows per batch size: the median of five tolerates two disturbed windows."""

WARMUP_PASSES = 2
"""Untimed passes before the windows, at least (the warm-up lasts a window)."""

MIN_PASSES = 1
"""Passes a window times at least, however long they take (a big model on a CPU takes
seconds a pass: the measurement stays at warm-up + REPEATS passes)."""


def params_m(model: nn.Module) -> float:
    """Parameters in millions (a quantiser's learned scales are not counted)."""
    skip = quantiser_parameters(model)
    return sum(p.numel() for p in model.parameters() if id(p) not in skip) / 1e6


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
        with counter, float_layers(model):
            out = model(x)
            # allow_unused: quantisers' scales take no part in the float_layers pass.
            # Frozen stages (model.frozen_stages) take no gradient: their backward is not run.
            params = [p for p in model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(out.float().sum(), params, allow_unused=True)
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
    """{"params_m", "gflops", "model_mbit", "gbops"} of a model at a resolution.

    model_mbit and gbops count quantised layers at their bit-widths, the rest at 32 bits
    (rsearch.train.quant); a full-precision model gets its 32-bit figures.
    """
    macs = gflops(model, image_size)
    return {
        "params_m": params_m(model),
        "gflops": macs,
        "model_mbit": model_mbit(model),
        "gbops": gbops(model, image_size, macs),
    }


def model_cost(recipe: Recipe) -> dict[str, float]:
    """cost() of the recipe's model at its final evaluation resolution
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


@dataclass(frozen=True)
class Timing:
    """The protocol's numbers for one input batch: the median window and the spread."""

    seconds: float
    """The median over the windows of each window's median pass time."""
    spread_pct: float
    """Coefficient of variation of the windows' medians, in % (0 with a single window)."""


def time_passes(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, window_s: float, repeats: int
) -> Timing:
    """Time forward passes of x under the protocol of this module's docstring."""
    with torch.inference_mode(), autocast(x.device, dtype):
        # First calls pay for allocation, kernel selection and cold caches: an untimed window.
        _window(model, x, window_s, WARMUP_PASSES)
        medians = [statistics.median(_window(model, x, window_s)) for _ in range(repeats)]
    return Timing(statistics.median(medians), _cv_pct(medians))


def _window(
    model: nn.Module, x: torch.Tensor, window_s: float, min_passes: int = MIN_PASSES
) -> list[float]:
    """Each pass's seconds, for window_s and at least min_passes passes."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_passes or time.perf_counter() - start < window_s:
        tick = time.perf_counter()
        model(x)
        synchronize(x.device)
        times.append(time.perf_counter() - tick)
    return times


def _cv_pct(values: list[float]) -> float:
    """Sample standard deviation over the mean, in %."""
    if len(values) < 2:
        return 0.0
    return 100.0 * statistics.stdev(values) / statistics.fmean(values)


def inference_speed(
    model: nn.Module,
    image_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
    batch: int = INFER_BATCH,
    window_s: float | None = None,
    repeats: int = REPEATS,
) -> dict[str, float]:
    """Inference throughput and latency in eval mode, at the training precision and layout.

    Batch 1 and then `batch` are each timed under the protocol of this module's docstring.
    The caller keeps other work off the device (rsearch.train.speed does, per node).

    Args:
        window_s: seconds of each timed window (default MEASURE_SECONDS / repeats).
        repeats: timed windows per batch size.

    Returns:
        infer_images_per_s (batch images per median second), infer_latency_ms (batch 1),
        infer_latency_ms_batch (the whole batch), infer_spread_pct and
        infer_latency_spread_pct (the windows' coefficient of variation at `batch` and at 1).
    """
    gen = torch.Generator().manual_seed(0)  # leaves the training generators untouched
    layout = torch.channels_last if channels_last else torch.contiguous_format
    window = MEASURE_SECONDS / repeats if window_s is None else window_s
    was_training = model.training
    model.eval()
    try:
        timings = {}
        for n in (1, batch):
            x = torch.randn(n, 3, image_size, image_size, generator=gen)
            x = x.to(device).contiguous(memory_format=layout)
            timings[n] = time_passes(model, x, dtype, window, repeats)
    finally:
        model.train(was_training)
    return {
        "infer_images_per_s": batch / timings[batch].seconds,
        "infer_latency_ms": timings[1].seconds * 1e3,
        "infer_latency_ms_batch": timings[batch].seconds * 1e3,
        "infer_spread_pct": timings[batch].spread_pct,
        "infer_latency_spread_pct": timings[1].spread_pct,
    }
