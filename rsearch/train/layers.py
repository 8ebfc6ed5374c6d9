"""The recipe's norm and activation layers, handed to timm's own factories.

ResNet (timm.models.resnet) resolves a norm name with `get_norm_layer` and calls it with the
channel count; ResNetV2 resolves it with `get_norm_act_layer`, which fuses the activation in
(and builds EvoNorms and FRN). Both resolve act_layer with `get_act_layer`. So the names pass
through as they are; only a group count is bound first (timm's GroupNorm takes `num_groups`,
its EvoNorm S* take `groups`). Which family takes which name is rsearch.spec.layers' table;
this module checks the built model's class against it and that the groups divide every
normalised channel count, on the meta device before the real build.
"""

from __future__ import annotations

import functools
import math
from typing import Any, cast

import torch
from timm.layers import get_norm_act_layer, get_norm_layer
from timm.models.resnet import ResNet
from timm.models.resnetv2 import ResNetV2
from torch import nn

from rsearch.spec import layers
from rsearch.spec.model_section import ModelConfig
from rsearch.train.errors import TrainInputError

FAMILY_CLASSES: dict[str, type[nn.Module]] = {"resnet": ResNet, "resnetv2": ResNetV2}
"""The timm class each family of rsearch.spec.layers builds."""


def uses_layers(cfg: ModelConfig) -> bool:
    """Whether the recipe swaps the model's norm or activation layers."""
    return cfg.norm_layer is not None or cfg.act_layer is not None


def layer_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """timm.create_model keyword arguments for the recipe's norm_layer/norm_groups/act_layer.

    Raises:
        TrainInputError: the model's family does not take the choice (what the spec refuses,
            for recipes built without it).
    """
    if not uses_layers(cfg):
        return {}
    family = _family(cfg)
    out: dict[str, Any] = {}
    if cfg.norm_layer is not None:
        out["norm_layer"] = _norm(cfg.norm_layer, cfg.norm_groups, family)
    if cfg.act_layer is not None:
        out["act_layer"] = cfg.act_layer
    return out


def _family(cfg: ModelConfig) -> str:
    problem = layers.norm_problem(cfg.name, cfg.norm_layer) or layers.act_problem(
        cfg.name, cfg.norm_layer, cfg.act_layer
    )
    problem = problem or layers.groups_problem(cfg.norm_layer, cfg.norm_groups)
    family = layers.family_of(cfg.name)
    if problem or family is None:
        raise TrainInputError(f"model {cfg.name!r}: {problem}")
    return family


def _norm(name: str, groups: int | None, family: str) -> Any:
    if groups is None:
        return name  # the family's own factory resolves it, binding its activation
    # Bound to the class, not to the factory's partial: that would also bind act_layer=None,
    # and the model's factory call would then keep no activation.
    layer = get_norm_act_layer(name) if family == "resnetv2" else get_norm_layer(name)
    layer = getattr(layer, "func", layer)
    key = "num_groups" if name == "groupnorm" else "groups"
    return functools.partial(layer, **{key: groups})


def check_on_meta(cfg: ModelConfig, build: Any, kwargs: dict[str, Any]) -> None:
    """Build the model on the meta device and check its class and its norms' group counts.

    Args:
        cfg: the recipe's model section.
        build: the function that builds the model from kwargs (timm's create, with errors).
        kwargs: every create_model keyword argument (scaling included: it sets the channels).

    Raises:
        TrainInputError: the model is not of the family the table expects, or a group count
            does not divide a normalised channel count.
    """
    try:
        model = _on_meta(build, cfg.name, kwargs)
    except ValueError as e:  # torch's GroupNorm refuses groups that do not divide channels
        if "divisible" not in str(e):
            raise
        model = None
    if model is None or any(channels % groups for channels, groups in grouped_norms(model)):
        plain = {k: v for k, v in kwargs.items() if k not in ("norm_layer", "act_layer")}
        raise TrainInputError(_groups_message(cfg, norm_channels(_on_meta(build, cfg.name, plain))))
    expected = FAMILY_CLASSES[layers.family_of(cfg.name) or ""]
    if not isinstance(model, expected):
        raise TrainInputError(
            f"model {cfg.name!r} built a {type(model).__name__}, not the {expected.__name__} "
            "that takes norm_layer/act_layer"
        )


def _on_meta(build: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    # The meta device builds the architecture without allocating or initialising weights.
    with torch.device("meta"):
        model = build(name, **kwargs)
    assert isinstance(model, nn.Module)
    return model


def grouped_norms(model: nn.Module) -> list[tuple[int, int]]:
    """(channels, groups) of every grouped norm layer of a model (GroupNorm, EvoNorm S*)."""
    out = []
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):
            out.append((module.num_channels, module.num_groups))
        elif type(module).__name__.startswith("EvoNorm2dS"):
            out.append((_weight_size(module), int(cast(int, module.groups))))
    return out


def norm_channels(model: nn.Module) -> list[int]:
    """Channel counts of every norm layer of a model (its normalised channel counts)."""
    return [
        _weight_size(module)
        for module in model.modules()
        if "Norm" in type(module).__name__
        and isinstance(getattr(module, "weight", None), nn.Parameter)
    ]


def _groups_message(cfg: ModelConfig, channels: list[int]) -> str:
    groups = cfg.norm_groups or 32
    bad = sorted({c for c in channels if c % groups})
    common = math.gcd(*channels) if channels else 1
    fits = [g for g in (1, 2, 4, 8, 16, 32, 64) if common % g == 0]
    return (
        f"model.norm_groups={groups} ({cfg.norm_layer} on {cfg.name!r}"
        f"{', timm default' if cfg.norm_groups is None else ''}) does not divide the normalised "
        f"channel counts {bad}; group counts that divide every one: {fits}"
    )


def _weight_size(module: nn.Module) -> int:
    # timm's norm layers keep one affine weight per channel.
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return int(weight.numel())
