"""Building the recipe's model with timm: ResNet/EfficientNet scaling and stem applied."""

from __future__ import annotations

import math
from typing import Any

import torch
from timm.layers import make_divisible
from timm.models.resnet import ResNet
from torch import nn

from rsearch.spec.model_section import ModelConfig
from rsearch.spec.recipe import Recipe
from rsearch.train.errors import TrainInputError
from rsearch.train.factory import create
from rsearch.train.finetune import freeze_stages
from rsearch.train.layers import check_on_meta, layer_kwargs, uses_layers
from rsearch.train.pretrained import load_pretrained
from rsearch.train.quant import quantise_model
from rsearch.train.vit import patch_family, patch_model

WIDTH_DIVISOR = 8
"""Scaled channel counts are rounded to multiples of this (EfficientNet/TinyNet convention)."""


def build_model(recipe: Recipe, num_classes: int, load_weights: bool = True) -> nn.Module:
    """The recipe's timm model with its scaling, stem and initial weights applied.

    Args:
        recipe: the run's recipe (model section; drop rates).
        num_classes: classifier outputs.
        load_weights: load model.pretrained when the recipe names one (off for cost estimates
            on the meta device).

    Raises:
        TrainInputError: unknown model name, scaling asked of a non-ResNet, mismatched weights,
            norm/act layers the model does not take or groups that do not divide its channels,
            frozen stages asked of a model without ResNet stages.
    """
    cfg = recipe.model
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if cfg.drop_rate > 0:  # passed only when set: not every timm model takes both
        kwargs["drop_rate"] = cfg.drop_rate
    if cfg.drop_path_rate > 0:
        kwargs["drop_path_rate"] = cfg.drop_path_rate
    kwargs.update(layer_kwargs(cfg))
    family = patch_family(cfg.name)
    if _needs_scaling(cfg) and cfg.name in EFFICIENTNET_COEFFICIENTS:
        model = efficientnet_scaled(cfg, **kwargs)
    elif family is not None and not _needs_scaling(cfg):
        model = patch_model(recipe, *family, **kwargs)
    else:
        if _needs_scaling(cfg):  # refuses anything but a ResNet, a ViT included
            kwargs.update(resnet_scaling(cfg))
        if cfg.patch_size is not None:
            raise TrainInputError(
                f"model.patch_size applies to ViTs and MLP-Mixers; {cfg.name!r} is neither"
            )
        if uses_layers(cfg):
            check_on_meta(cfg, create, kwargs)
        model = create(cfg.name, **kwargs)
    if cfg.small_stem:
        use_small_stem(model, cfg.name)
    if load_weights and cfg.pretrained:
        load_pretrained(model, cfg.pretrained, cfg.name)
    # After the float weights load and before any optimizer exists (LSQ's scales train).
    model = quantise_model(model, recipe.quant)
    freeze_stages(model, cfg.frozen_stages, cfg.name)  # before the optimizer groups exist
    return model


EFFICIENTNET_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "efficientnet_b0": (1.0, 1.0),
    "efficientnet_b1": (1.0, 1.1),
    "efficientnet_b2": (1.1, 1.2),
    "efficientnet_b3": (1.2, 1.4),
    "efficientnet_b4": (1.4, 1.8),
    "efficientnet_b5": (1.6, 2.2),
    "efficientnet_b6": (1.8, 2.6),
    "efficientnet_b7": (2.0, 3.1),
    "tinynet_a": (1.0, 1.2),
    "tinynet_b": (0.75, 1.1),
    "tinynet_c": (0.54, 0.85),
    "tinynet_d": (0.54, 0.695),
    "tinynet_e": (0.51, 0.6),
}
"""(width, depth) coefficients over EfficientNet-B0 of the timm models whose width and depth
multipliers rsearch scales (EfficientNet and TinyNet papers; timm's efficientnet.py)."""


def efficientnet_scaled(cfg: ModelConfig, **kwargs: Any) -> nn.Module:
    """An EfficientNet/TinyNet with its width and depth scaled by the recipe's multipliers.

    The multipliers apply on top of the named model's own coefficients, as they do for a
    ResNet's blocks and channels: efficientnet_b0 at depth 1.4 and width 1.2 is B3's shape.
    timm's registered builders fix the coefficients, so its generator functions are called
    (private timm API: `_gen_efficientnet`, `_gen_tinynet`).

    Raises:
        TrainInputError: model.layers was given (these models have no ResNet stages).
    """
    from timm.models import efficientnet

    if cfg.layers is not None:
        raise TrainInputError(
            f"model.layers applies to the ResNet family; scale {cfg.name!r} with "
            "depth_multiplier and width_multiplier"
        )
    width, depth = EFFICIENTNET_COEFFICIENTS[cfg.name]
    width, depth = width * cfg.width_multiplier, depth * cfg.depth_multiplier
    if cfg.name.startswith("tinynet"):
        return efficientnet._gen_tinynet(cfg.name, width, depth, pretrained=False, **kwargs)
    return efficientnet._gen_efficientnet(
        cfg.name, channel_multiplier=width, depth_multiplier=depth, pretrained=False, **kwargs
    )


def _needs_scaling(cfg: ModelConfig) -> bool:
    return cfg.layers is not None or cfg.depth_multiplier != 1.0 or cfg.width_multiplier != 1.0


def _base_resnet(name: str, reason: str) -> ResNet:
    # The meta device builds the architecture without allocating or initialising weights.
    with torch.device("meta"):
        base = create(name)
    if not isinstance(base, ResNet):
        raise TrainInputError(
            f"{reason} applies to the ResNet family (timm's ResNet class: resnet*, resnext*, "
            f"seresnet*, resnetrs*, ...); {name!r} is a {type(base).__name__}"
        )
    return base


def stage_blocks(model: ResNet) -> list[int]:
    """Blocks per stage of a timm ResNet."""
    return [len(getattr(model, f"layer{i + 1}")) for i in range(_stage_count(model))]


def stage_channels(model: ResNet) -> list[int]:
    """Planes per stage of a timm ResNet (block output channels / block expansion)."""
    out = []
    for i in range(_stage_count(model)):
        first = getattr(model, f"layer{i + 1}")[0]
        out.append(_feature_channels(model, i + 1) // type(first).expansion)
    return out


def stem_channels(model: ResNet) -> int:
    """Output channels of a timm ResNet's stem."""
    return _feature_channels(model, 0)


def _feature_channels(model: ResNet, index: int) -> int:
    channels = model.feature_info[index]["num_chs"]
    assert isinstance(channels, int)
    return channels


def _stage_count(model: ResNet) -> int:
    return len(model.feature_info) - 1  # feature_info[0] is the stem


def resnet_scaling(cfg: ModelConfig) -> dict[str, Any]:
    """create_model keyword arguments that scale a timm ResNet's depth and width.

    Depth: model.layers (explicit blocks per stage), else ceil(blocks * depth_multiplier), at
    least one block a stage. Width: every stage's channels times width_multiplier, rounded to a
    multiple of WIDTH_DIVISOR; a deep stem's width scales too, while timm's single 7x7 stem is
    fixed at 64 channels.

    Raises:
        TrainInputError: the model is not a timm ResNet, or layers has the wrong stage count.
    """
    base = _base_resnet(cfg.name, "depth/width scaling (model.layers, depth/width_multiplier)")
    blocks = stage_blocks(base)
    out: dict[str, Any] = {}
    if cfg.layers is not None:
        if len(cfg.layers) != len(blocks):
            raise TrainInputError(
                f"model.layers lists {len(cfg.layers)} stages but {cfg.name!r} has {len(blocks)}"
            )
        out["layers"] = tuple(cfg.layers)
    elif cfg.depth_multiplier != 1.0:
        out["layers"] = tuple(max(1, math.ceil(n * cfg.depth_multiplier)) for n in blocks)
    if cfg.width_multiplier != 1.0:
        out["channels"] = tuple(_scale(c, cfg.width_multiplier) for c in stage_channels(base))
        if isinstance(base.conv1, nn.Sequential):  # deep stem: inplanes = 2 * stem_width
            out["stem_width"] = _scale(stem_channels(base) // 2, cfg.width_multiplier)
    return out


def _scale(channels: int, multiplier: float) -> int:
    return int(make_divisible(channels * multiplier, WIDTH_DIVISOR))


def use_small_stem(model: nn.Module, name: str) -> None:
    """Replace a ResNet stem by one 3x3 stride-1 conv and drop its max-pool (32-64 px inputs).

    timm's stems all downsample by 4 (stride-2 conv + max-pool), which leaves 1x1 feature maps
    after the last stage at 32 px.

    Raises:
        TrainInputError: the model is not a timm ResNet.
    """
    if not isinstance(model, ResNet):
        raise TrainInputError(
            f"model.small_stem applies to the ResNet family; {name!r} is a {type(model).__name__}"
        )
    device = next(model.parameters()).device
    conv = nn.Conv2d(
        model.in_chans, stem_channels(model), 3, stride=1, padding=1, bias=False, device=device
    )
    if device.type != "meta":  # timm's initialisation of its convs
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    # setattr: timm types conv1/maxpool as the modules it builds, not as any nn.Module.
    model.conv1 = conv  # type: ignore[assignment]
    model.maxpool = nn.Identity()  # type: ignore[assignment]
