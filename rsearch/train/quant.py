"""Quantisation-aware training: the recipe's model with fake-quantised weights and inputs.

Every plain `nn.Conv2d` and `nn.Linear` becomes a subclass of PyTorch's QAT module
(`torch.ao.nn.qat.Conv2d` / `Linear`): its weight passes through a weight fake-quantiser
(per output channel, symmetric, signed range [-2^(b-1), 2^(b-1) - 1]) and, added here, its
input through an activation fake-quantiser (per tensor, affine, range [0, 2^b - 1]). The first
conv and the classifier take `quant.first_last_bits` (8 by default, as in the 4-bit ResNet
paper). The quantisers are torch.ao.quantization's, none is written here:

- `minmax`: `FakeQuantize` with a `PerChannelMinMaxObserver` on the weights (the range of the
  current weights, at every pass) and a `MovingAverageMinMaxObserver` on the inputs (updated in
  training mode only, frozen for evaluation).
- `lsq`: learned step size (Esser et al., arXiv:1902.08153) with torch's
  `_LearnableFakeQuantize` (private API, works on torch 2.14): scales and zero points are
  parameters trained by the optimizer, gradients scaled by 1/sqrt(numel * Qp) as in the paper.
  Weight scales start from the weights' min/max; input scales from the first training batch
  (averaged over the workers, so every rank starts from the same scales).

Subclasses of Conv2d/Linear (timm's StdConv2d, Conv2dSame, ...) compute their weight in their
own forward and stay full precision. The transform keeps parameter names (`conv1.weight`), so
float weights load before it; it runs before the optimizer is built, so LSQ's scales train.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.ao.nn.qat as qat
import torch.distributed as dist
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    FakeQuantizeBase,
    MovingAverageMinMaxObserver,
    PerChannelMinMaxObserver,
    QConfig,
)
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

from rsearch.spec.recipe import QuantConfig

FULL_BITS = 32
"""Bits of a full-precision value (weights and activations left unquantised)."""

Factory = Callable[..., FakeQuantizeBase]


@dataclass(frozen=True)
class LayerBits:
    """The bit-widths of one layer: None is full precision."""

    weight: int | None
    act: int | None


class _QuantLayer:
    """What the QAT conv and linear share: the input quantiser and its handling."""

    input_fake_quant: FakeQuantizeBase | None
    bits: LayerBits
    plain: bool = False
    """Run as the float layer (see float_layers)."""
    weight_fake_quant: FakeQuantizeBase
    training: bool

    def _quantise_input(self, x: torch.Tensor) -> torch.Tensor:
        fq = self.input_fake_quant
        if fq is None:
            return x
        if isinstance(fq, FakeQuantize):
            # The range is learnt in training mode only. Set at every pass, not in train():
            # an EMA copy (in eval mode) copies the training model's flag with its buffers.
            fq.enable_observer(self.training)
        elif isinstance(fq, _LearnableFakeQuantize) and self.training:
            _calibrate_once(fq, x)
        return fq(x)


class QuantConv2d(_QuantLayer, qat.Conv2d):
    """torch's QAT Conv2d (fake-quantised weight) with a fake-quantised input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of the quantised input by the quantised weight."""
        if x.is_meta or self.plain:  # the quantisers cannot run on meta (shapes only)
            return self._conv_forward(x, self.weight, self.bias)
        return super().forward(self._quantise_input(x))


class QuantLinear(_QuantLayer, qat.Linear):
    """torch's QAT Linear (fake-quantised weight) with a fake-quantised input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised input times the quantised weight."""
        if x.is_meta or self.plain:
            return nn.functional.linear(x, self.weight, self.bias)
        return super().forward(self._quantise_input(x))


QUANT_LAYERS = (QuantConv2d, QuantLinear)


def _calibrate_once(fq: _LearnableFakeQuantize, x: torch.Tensor) -> None:
    """LSQ's input scale from the first training batch's range, the same on every rank.

    The scale stays a parameter in the graph of every step (learning is never switched off),
    so DDP sees the same parameters used at each step.
    """
    calibrated = fq.get_buffer("calibrated")
    if bool(calibrated.item()):
        return
    with torch.no_grad():
        observer = fq.activation_post_process
        observer(x.detach())
        scale, zero_point = observer.calculate_qparams()
        scale, zero_point = scale.to(fq.scale), zero_point.to(fq.zero_point)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(scale)
            dist.all_reduce(zero_point)
            scale /= dist.get_world_size()
            zero_point = (zero_point / dist.get_world_size()).round()
        fq.scale.copy_(scale)
        fq.zero_point.copy_(zero_point)
        calibrated.fill_(1)


def weight_quantiser(bits: int, method: str, channels: int) -> Factory:
    """A factory of per-output-channel symmetric weight fake-quantisers at `bits`."""
    kwargs: dict[str, Any] = {
        "observer": PerChannelMinMaxObserver,
        "quant_min": -(2 ** (bits - 1)),
        "quant_max": 2 ** (bits - 1) - 1,
        "dtype": torch.qint8,
        "qscheme": torch.per_channel_symmetric,
        "ch_axis": 0,
    }
    if method == "lsq":
        return _LearnableFakeQuantize.with_args(
            channel_len=channels, use_grad_scaling=True, **kwargs
        )
    return FakeQuantize.with_args(**kwargs)


def act_quantiser(bits: int, method: str) -> Factory:
    """A factory of per-tensor affine input fake-quantisers at `bits`."""
    kwargs: dict[str, Any] = {
        "observer": MovingAverageMinMaxObserver,
        "quant_min": 0,
        "quant_max": 2**bits - 1,
        "dtype": torch.quint8,
        "qscheme": torch.per_tensor_affine,
    }
    if method == "lsq":
        return _LearnableFakeQuantize.with_args(use_grad_scaling=True, **kwargs)
    return FakeQuantize.with_args(**kwargs)


def _identity(**_: Any) -> nn.Module:
    return nn.Identity()


def quantise_model(model: nn.Module, cfg: QuantConfig) -> nn.Module:
    """Replace the model's Conv2d/Linear layers by their fake-quantised versions, in place.

    Returns the model itself; unchanged when cfg quantises nothing.
    """
    if not cfg.enabled:
        return model
    # Exact types: subclasses (StdConv2d, Conv2dSame, ...) compute their weight themselves.
    layers: list[tuple[str, nn.Conv2d | nn.Linear]] = [
        (name, m) for name, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)
    ]
    if not layers:
        return model
    edges = {layers[0][0], _classifier_name(model, layers)}
    for name, layer in layers:
        edge = name in edges
        bits = LayerBits(
            weight=_edge_bits(cfg.weight_bits, cfg.first_last_bits, edge),
            act=_edge_bits(cfg.act_bits, cfg.first_last_bits, edge),
        )
        _replace(model, name, _quant_layer(layer, bits, cfg.method))
    return model


def _edge_bits(body: int | None, edge_bits: int | None, edge: bool) -> int | None:
    # The first and last layers follow first_last_bits for what the body quantises at all.
    return edge_bits if edge and body is not None else body


def _classifier_name(model: nn.Module, layers: list[tuple[str, nn.Conv2d | nn.Linear]]) -> str:
    """The classifier's module name: timm's get_classifier(), else the last layer."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    for name, layer in layers:
        if layer is head:
            return name
    return layers[-1][0]


def _quant_layer(layer: nn.Conv2d | nn.Linear, bits: LayerBits, method: str) -> nn.Module:
    """The QAT version of a Conv2d/Linear, sharing its weight and bias tensors."""
    out_channels = layer.weight.shape[0]
    cls: type[QuantConv2d] | type[QuantLinear] = (
        QuantConv2d if isinstance(layer, nn.Conv2d) else QuantLinear
    )
    # from_float builds its quantisers from a qconfig: placeholders, replaced just below.
    layer.qconfig = QConfig(activation=_identity, weight=_identity)  # type: ignore[assignment]
    device = layer.weight.device
    with torch.device(device):
        quant = cls.from_float(layer)
    # _LearnableFakeQuantize cannot be built on the meta device (it reads a tensor's value);
    # on meta the layer's forward never calls its quantisers, which hold a few numbers each.
    on = torch.device("cpu") if device.type == "meta" else device
    with torch.device(on):
        quant.weight_fake_quant = (
            nn.Identity()
            if bits.weight is None
            else weight_quantiser(bits.weight, method, out_channels)()
        )
        quant.input_fake_quant = None if bits.act is None else act_quantiser(bits.act, method)()
    quant.bits = bits
    _start(quant, method, device)
    del layer.qconfig, quant.qconfig
    return quant


def _start(layer: QuantConv2d | QuantLinear, method: str, device: torch.device) -> None:
    """Set the quantisers' initial scales and shapes from the weights; LSQ's to learning."""
    wfq, afq = layer.weight_fake_quant, layer.input_fake_quant
    if device.type != "meta" and isinstance(wfq, FakeQuantizeBase):
        # One observation fixes the per-channel buffers' shapes (a checkpoint loads into them)
        # and, for LSQ, initialises the step sizes from the weights' range.
        with torch.no_grad():
            wfq(layer.weight.detach())
    if method != "lsq":
        return
    for fq in (wfq, afq):
        if isinstance(fq, _LearnableFakeQuantize):
            fq.enable_param_learning()
    if isinstance(afq, _LearnableFakeQuantize):
        afq.register_buffer(
            "calibrated", torch.zeros(1, dtype=torch.uint8, device=afq.scale.device)
        )


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def quant_key(cfg: QuantConfig) -> str:
    """What the quantisation adds to a model's cache key ('' when off: float keys unchanged)."""
    return "" if not cfg.enabled else " quant=" + cfg.model_dump_json()


def quant_layers(model: nn.Module) -> Iterator[tuple[str, QuantConv2d | QuantLinear]]:
    """The model's fake-quantised layers by name."""
    for name, module in model.named_modules():
        if isinstance(module, QUANT_LAYERS):
            yield name, module


@contextmanager
def float_layers(model: nn.Module) -> Iterator[None]:
    """The quantised layers run as float layers meanwhile: FLOP counting (a fake quantiser
    does no multiply-add; its autograd nodes break the counter's backward hooks) must neither
    observe nor calibrate on its zero images."""
    layers = [layer for _, layer in quant_layers(model)]
    for layer in layers:
        layer.plain = True
    try:
        yield
    finally:
        for layer in layers:
            layer.plain = False


def quantiser_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters that belong to quantisers (LSQ's scales and zero points)."""
    out: set[int] = set()
    for module in model.modules():
        if isinstance(module, FakeQuantizeBase):
            out.update(id(p) for p in module.parameters())
    return out


def model_mbit(model: nn.Module) -> float:
    """Model size in megabits: quantised weights at their bit-width, other parameters at 32.

    Quantisers' own numbers (scales, zero points) are not counted, as params_m does not.
    """
    weight_bits = {
        id(layer.weight): layer.bits.weight
        for _, layer in quant_layers(model)
        if layer.bits.weight is not None
    }
    skip = quantiser_parameters(model)
    bits = sum(
        p.numel() * weight_bits.get(id(p), FULL_BITS)
        for p in model.parameters()
        if id(p) not in skip
    )
    return bits / 1e6


def layer_macs(model: nn.Module, image_size: int) -> dict[str, tuple[float, LayerBits]]:
    """Multiply-adds of each Conv2d/Linear for one image at a resolution, with its bits.

    Counted with forward hooks on a zero image in eval mode (any device, meta included).
    """
    out: dict[str, tuple[float, LayerBits]] = {}
    full = LayerBits(None, None)

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            per_output = weight[0].numel()  # (in / groups) * kh * kw, or in_features
            macs = output.numel() / output.shape[0] * per_output
            previous = out.get(name, (0.0, full))[0]
            out[name] = (previous + macs, getattr(module, "bits", full))

        return record

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    param = next(model.parameters())
    x = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return out


def gbops(model: nn.Module, image_size: int, gmacs: float) -> float:
    """Bit-operations of one image's forward pass, in billions.

    Each Conv2d/Linear counts its multiply-adds times its weight bits times its input bits
    (32 for full precision); every other multiply-add of the pass (gmacs, the model's total,
    minus the layers') counts 32 x 32.
    """
    layers = layer_macs(model, image_size)
    rest = gmacs * 1e9 - sum(macs for macs, _ in layers.values())
    bops = sum(
        macs * (bits.weight or FULL_BITS) * (bits.act or FULL_BITS)
        for macs, bits in layers.values()
    )
    return (bops + max(rest, 0.0) * FULL_BITS * FULL_BITS) / 1e9
