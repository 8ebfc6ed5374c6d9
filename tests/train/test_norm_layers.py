"""model.norm_layer / norm_groups / act_layer: every accepted choice builds and trains on digits;
the layers really change; group counts that do not divide the channels are refused."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import torch
from timm.layers import get_act_layer, get_norm_act_layer, get_norm_layer
from torch import nn

from rsearch.spec import Recipe
from rsearch.spec.data_section import DataConfig
from rsearch.spec.layers import (
    ACTIVATIONS,
    GROUPED_NORMS,
    NORMS_BY_FAMILY,
    OWN_SELF_ACTIVATED_NORM,
    SELF_ACTIVATED_NORMS,
    model_families,
)
from rsearch.train import TrainInputError, fit
from rsearch.train.model import build_model
from rsearch.train.sources import load_source

SMALL: dict[str, dict[str, Any]] = {
    "resnet": {"name": "resnet18", "width_multiplier": 0.25},  # stages of 16..128 channels
    "resnetv2": {"name": "resnetv2_18"},  # 64..512 channels: timm's 32 groups divide them
}
"""The small model of each family the tests train (32 px digits)."""


@pytest.fixture(scope="module")
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Eight digits training images at 32 px, scaled to [0, 1], and their labels."""
    train = load_source(DataConfig(dataset="digits", image_size=32), 32, 0).train
    return train.images[:8].float() / 255.0, train.labels[:8]


def _model(**model: Any) -> nn.Module:
    torch.manual_seed(0)
    return build_model(Recipe.model_validate({"model": model}), 10)


def _trains_a_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    loss = nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def _types(model: nn.Module) -> collections.Counter[type]:
    return collections.Counter(type(m) for m in model.modules())


def _norm_class(family: str, norm: str) -> type:
    layer = get_norm_act_layer(norm) if family == "resnetv2" else get_norm_layer(norm)
    return getattr(layer, "func", layer)  # a partial binds the activation


@pytest.mark.parametrize(
    ("family", "norm"),
    [(family, norm) for family, norms in NORMS_BY_FAMILY.items() for norm in norms],
)
def test_each_accepted_norm_builds_and_trains_a_step(
    family: str, norm: str, digits_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    groups = {"norm_groups": 8} if norm in GROUPED_NORMS and family == "resnet" else {}
    base = _types(_model(**SMALL[family]))
    model = _model(**SMALL[family], norm_layer=norm, **groups)
    assert _types(model)[_norm_class(family, norm)] == base[_norm_class(family, "batchnorm")]
    if norm not in SELF_ACTIVATED_NORMS:  # the model's own activation stays
        assert _types(model)[nn.ReLU] == base[nn.ReLU] > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) or "batch" in norm
    _trains_a_step(model, digits_batch)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_each_activation_replaces_every_relu_and_trains(
    act: str, digits_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    relus = _types(_model(**SMALL["resnet"]))[nn.ReLU]
    model = _model(**SMALL["resnet"], act_layer=act)
    expected = get_act_layer(act)
    assert _types(model)[expected] == relus == 17
    if expected is not nn.ReLU:
        assert _types(model)[nn.ReLU] == 0
    _trains_a_step(model, digits_batch)


def test_activation_goes_into_resnetv2_fused_norms(
    digits_batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    model = _model(**SMALL["resnetv2"], norm_layer="groupnorm", norm_groups=16, act_layer="gelu")
    acts = [m.act for m in model.modules() if hasattr(m, "act") and "Norm" in type(m).__name__]
    assert len(acts) == 17 and all(type(a) is get_act_layer("gelu") for a in acts)
    assert _types(model)[nn.ReLU] == 0
    _trains_a_step(model, digits_batch)


def test_group_count_reaches_the_layers() -> None:
    gn = _model(**SMALL["resnet"], norm_layer="groupnorm", norm_groups=4)
    assert {m.num_groups for m in gn.modules() if isinstance(m, nn.GroupNorm)} == {4}
    evo = _model(**SMALL["resnetv2"], norm_layer="evonorm_s0", norm_groups=16)
    assert {m.groups for m in evo.modules() if hasattr(m, "groups") and "Evo" in str(type(m))} == {
        16
    }


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (
            {**SMALL["resnet"], "norm_layer": "groupnorm"},
            r"norm_groups=32 \(groupnorm on 'resnet18', timm default\) does not divide the "
            r"normalised channel counts \[16\]; group counts that divide every one: "
            r"\[1, 2, 4, 8, 16\]",
        ),
        (
            {**SMALL["resnetv2"], "norm_layer": "evonorm_s0", "norm_groups": 24},
            r"norm_groups=24 \(evonorm_s0 on 'resnetv2_18'\) does not divide the normalised "
            r"channel counts \[64, 128, 256, 512\]",
        ),
    ],
)
def test_groups_that_do_not_divide_the_channels_are_refused(
    model: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(TrainInputError, match=fragment):
        _model(**model)


def test_build_refuses_what_the_table_refuses() -> None:
    # model_copy skips validation, as a recipe made outside the spec loader could.
    recipe = Recipe()
    bad = recipe.model_copy(
        update={"model": recipe.model.model_copy(update={"norm_layer": "evonorm_s0"})}
    )
    with pytest.raises(TrainInputError, match="only ResNetV2"):
        build_model(bad, 10)


def test_own_self_activated_norms_match_timm() -> None:
    found = {}
    for name, family in model_families().items():
        if family != "resnetv2":
            continue
        with torch.device("meta"):
            model = build_model(Recipe.model_validate({"model": {"name": name}}), 10, False)
        classes = {type(m) for m in model.modules()}
        own = [n for n in SELF_ACTIVATED_NORMS if get_norm_act_layer(n) in classes]
        if own:
            found[name] = own[0]
    assert found == OWN_SELF_ACTIVATED_NORM


def test_fit_trains_group_norm_and_silu_on_digits() -> None:
    recipe = Recipe.model_validate(
        {
            "model": {**SMALL["resnet"], "norm_layer": "groupnorm", "norm_groups": 8},
            "data": {"dataset": "digits", "image_size": 32, "batch_size": 8, "fraction": 0.15},
            "optim": {"lr": 0.05},
            "epochs": 1,
        }
    )
    recipe = recipe.model_copy(
        update={"model": recipe.model.model_copy(update={"act_layer": "silu"})}
    )
    final = fit(recipe)
    assert final["val_top1"] > 10.0  # above chance after one epoch on digits
