"""Model building: timm names, ResNet scaling, small stem, drop path, initial weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from rsearch.spec import Recipe
from rsearch.train import TrainInputError
from rsearch.train.model import build_model, stage_blocks, stage_channels
from tests.train.train_helpers import RecipeFactory


def _renamed(recipe: Recipe, name: str) -> Recipe:
    # model_copy skips validation, as a recipe made outside the spec loader could.
    return recipe.model_copy(update={"model": recipe.model.model_copy(update={"name": name})})


def test_unknown_model_suggests_a_name(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match=r"timm has no model 'resnet19'.*did you mean"):
        build_model(_renamed(make_recipe(), "resnet19"), 10)


def test_builds_timm_model_with_classes_and_dropout(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(model={"drop_rate": 0.3}), 7)
    assert isinstance(model, ResNet)
    assert model.fc.out_features == 7
    assert model.drop_rate == 0.3


def test_small_stem(make_recipe: RecipeFactory) -> None:
    for name in ("resnet18", "test_resnet"):  # single 7x7 stem and deep 3x3 stem
        model = build_model(make_recipe(model={"name": name, "small_stem": True}), 10)
        assert isinstance(model.conv1, nn.Conv2d)
        assert model.conv1.stride == (1, 1) and model.conv1.kernel_size == (3, 3)
        assert isinstance(model.maxpool, nn.Identity)
        features = model.eval().forward_features(torch.zeros(1, 3, 32, 32))
        assert features.shape[-1] == 4  # 32 / 8: only the three stage strides remain
    default = build_model(make_recipe(model={"name": "resnet18"}), 10)
    assert default.eval().forward_features(torch.zeros(1, 3, 32, 32)).shape[-1] == 1


def test_depth_multiplier(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(model={"name": "resnet18", "depth_multiplier": 1.5}), 10)
    assert stage_blocks(model) == [3, 3, 3, 3]  # ceil(2 * 1.5)
    model = build_model(make_recipe(model={"name": "resnet50", "depth_multiplier": 0.3}), 10)
    assert stage_blocks(model) == [1, 2, 2, 1]  # ceil([3, 4, 6, 3] * 0.3), at least 1
    model = build_model(make_recipe(model={"name": "resnet18", "layers": [1, 2, 3, 1]}), 10)
    assert stage_blocks(model) == [1, 2, 3, 1]


def test_width_multiplier(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(model={"name": "resnet18", "width_multiplier": 0.5}), 10)
    assert stage_channels(model) == [32, 64, 128, 256]
    assert model.fc.in_features == 256
    model = build_model(make_recipe(model={"name": "resnet50", "width_multiplier": 0.5}), 10)
    assert isinstance(model.layer1[0], Bottleneck)
    assert model.fc.in_features == 1024  # 256 planes * expansion 4
    # test_resnet has a deep stem (stem_width 16 -> 32 channels out) and stages 32, 48, 48, 96
    model = build_model(make_recipe(model={"width_multiplier": 2.0}), 10)
    assert isinstance(model.layer1[0], BasicBlock)
    assert stage_channels(model) == [64, 96, 96, 192]
    assert model.bn1.num_features == 64


def test_scaling_needs_a_resnet(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(model={"name": "test_convnext", "width_multiplier": 2.0})
    with pytest.raises(TrainInputError, match="applies to the ResNet family"):
        build_model(recipe, 10)
    with pytest.raises(TrainInputError, match="small_stem applies to the ResNet family"):
        build_model(make_recipe(model={"name": "test_convnext", "small_stem": True}), 10)
    with pytest.raises(TrainInputError, match="lists 3 stages but 'resnet18' has 4"):
        build_model(make_recipe(model={"name": "resnet18", "layers": [1, 1, 1]}), 10)


def test_drop_path_only_in_train_mode(make_recipe: RecipeFactory) -> None:
    x = torch.randn(4, 3, 32, 32)
    for rate, expect_differ in ((0.0, False), (0.5, True)):
        torch.manual_seed(0)
        model = build_model(make_recipe(model={"drop_path_rate": rate}), 10)
        # BatchNorm's last weights start at zero in timm ResNets, which would hide the
        # residual branches that drop path drops.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
        model.train()
        differ = not torch.allclose(model(x), model(x))
        assert differ == expect_differ
        model.eval()
        assert torch.equal(model(x), model(x))


def test_initial_weights_from_state_dict(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_model(make_recipe(), 10)
    path = tmp_path / "weights.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)  # DDP-style
    torch.manual_seed(2)
    model = build_model(make_recipe(model={"pretrained": str(path)}), 10)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_initial_weights_keep_a_new_classifier(
    make_recipe: RecipeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = build_model(make_recipe(), 1000)
    path = tmp_path / "imagenet.pt"
    torch.save(source.state_dict(), path)
    with caplog.at_level(logging.INFO, logger="rsearch.train.pretrained"):
        model = build_model(make_recipe(model={"pretrained": str(path)}), 10)
    assert "classifier 'fc' re-made for 10 classes" in caplog.text
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    assert model.fc.out_features == 10


def test_initial_weights_must_fit(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    path = tmp_path / "r18.pt"
    torch.save(build_model(make_recipe(model={"name": "resnet18"}), 10).state_dict(), path)
    with pytest.raises(TrainInputError, match="does not fit model"):
        build_model(make_recipe(model={"pretrained": str(path)}), 10)
    with pytest.raises(TrainInputError, match="does not exist"):
        build_model(make_recipe(model={"pretrained": str(tmp_path / "nope.pt")}), 10)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(TrainInputError, match="cannot read model.pretrained"):
        build_model(make_recipe(model={"pretrained": str(tmp_path / "junk.pt")}), 10)
