"""EfficientNet/TinyNet width and depth multipliers: applied on top of the named model's own
coefficients, through timm's EfficientNet generators."""

from __future__ import annotations

import pytest
import torch
from timm.models.efficientnet import EfficientNet

from rsearch.spec import Recipe
from rsearch.train import TrainInputError
from rsearch.train.measure import params_m
from rsearch.train.model import build_model


def meta_model(name: str, width: float = 1.0, depth: float = 1.0, **model: object) -> EfficientNet:
    recipe = Recipe.model_validate(
        {"model": {"name": name, "width_multiplier": width, "depth_multiplier": depth, **model}}
    )
    with torch.device("meta"):
        built = build_model(recipe, 10)
    assert isinstance(built, EfficientNet)
    return built


def blocks(model: EfficientNet) -> list[int]:
    return [len(stage) for stage in model.blocks]


@pytest.mark.parametrize(
    ("base", "width", "depth", "same_as"),
    [
        ("efficientnet_b0", 1.2, 1.4, "efficientnet_b3"),  # B3 = B0 at width 1.2, depth 1.4
        ("efficientnet_b0", 2.0, 3.1, "efficientnet_b7"),
        ("tinynet_c", 1.0, 0.695 / 0.85, "tinynet_d"),  # same width 0.54, C's depth -> D's
    ],
)
def test_multipliers_reach_the_published_shapes(
    base: str, width: float, depth: float, same_as: str
) -> None:
    scaled, reference = meta_model(base, width, depth), meta_model(same_as)
    assert blocks(scaled) == blocks(reference)
    assert params_m(scaled) == pytest.approx(params_m(reference))


def test_multipliers_grow_and_shrink_the_model() -> None:
    b0 = meta_model("efficientnet_b0")
    wider, shallower = meta_model("efficientnet_b0", width=1.5), meta_model("tinynet_e", depth=0.5)
    assert params_m(wider) > params_m(b0)
    assert sum(blocks(shallower)) < sum(blocks(meta_model("tinynet_e")))
    assert blocks(wider) == blocks(b0)


def test_drop_rate_passes_through() -> None:
    assert meta_model("efficientnet_b0", width=1.1, drop_rate=0.3).drop_rate == 0.3


def test_layers_are_for_resnets_only() -> None:
    with pytest.raises(TrainInputError, match="model.layers applies to the ResNet family"):
        meta_model("efficientnet_b0", layers=[1, 1, 1, 1, 1, 1, 1])


def test_scaled_efficientnet_trains_a_step() -> None:
    recipe = Recipe.model_validate(
        {"model": {"name": "tinynet_e", "width_multiplier": 0.5, "depth_multiplier": 0.5}}
    )
    model = build_model(recipe, 10)
    loss = model(torch.randn(2, 3, 32, 32)).logsumexp(dim=1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
