"""Pretrained starts (model.pretrained) and the fine-tuning knobs (frozen stages, a lower
backbone LR): real training on digits and on tiny synthetic data, real timm and torch files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from rsearch.spec import Recipe, SpecError, load_recipe
from rsearch.train import TrainInputError, fit
from rsearch.train.checkpoint import CHECKPOINT_NAME, load_file
from rsearch.train.model import build_model
from rsearch.train.optim import build_optimizer, build_scheduler
from tests.train.train_helpers import RecipeFactory


def write_digits(root: Path, digits: range) -> Path:
    """An image folder of the bundled digits of the given classes, a quarter of them val/."""
    bunch = load_digits()
    rng = np.random.default_rng(0)
    for i, (image, label) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        if label not in digits:
            continue
        folder = root / ("val" if rng.random() < 0.25 else "train") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").save(folder / f"{i}.png")
    return root


def digits_recipe(path: Path, epochs: int, fraction: float = 1.0, **model: Any) -> Recipe:
    """test_resnet on a digits folder at 16 px, without flips (digits are not symmetric)."""
    return Recipe.model_validate(
        {
            "model": {"name": "test_resnet", **model},
            "data": {
                "dataset": "image_folder",
                "path": str(path),
                "image_size": 16,
                "batch_size": 32,
                "fraction": fraction,
            },
            "optim": {"lr": 0.05},
            "augment": {"hflip": 0.0, "random_resized_crop": False},
            "epochs": epochs,
            "seed": 0,
        }
    )


@pytest.fixture(scope="module")
def digits_0_to_4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rsearch checkpoint of test_resnet trained two epochs on digits 0-4 (a 5-class head)."""
    root = tmp_path_factory.mktemp("digits-0-4")
    fit(digits_recipe(write_digits(root / "data", range(5)), epochs=2), checkpoint_dir=root)
    return root / CHECKPOINT_NAME


def test_a_pretrained_start_beats_a_random_one(
    digits_0_to_4: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The second task: all ten digits, a 10-class head; a third of its training images for
    # one epoch, so the start matters (same seed, data and steps for both).
    ten = write_digits(tmp_path / "all", range(10))
    random_start = fit(digits_recipe(ten, epochs=1, fraction=0.3))
    with caplog.at_level(logging.INFO, logger="rsearch.train.pretrained"):
        pretrained = fit(digits_recipe(ten, 1, 0.3, pretrained=str(digits_0_to_4)))
    assert "classifier 'fc' re-made for 10 classes" in caplog.text
    # Measured 57 against 23 (docs/recipes.md); half that margin is demanded.
    assert float(pretrained["val_top1"]) > float(random_start["val_top1"]) + 15


def test_weights_of_another_architecture_are_refused(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    path = tmp_path / "r18.pt"
    torch.save(build_model(make_recipe(model={"name": "resnet18"}), 4).state_dict(), path)
    with pytest.raises(TrainInputError) as caught:
        build_model(make_recipe(model={"pretrained": str(path)}), 4)
    message = str(caught.value)
    assert f"model.pretrained {str(path)!r} does not fit model 'test_resnet'" in message
    assert "missing (" in message and "unexpected (" in message
    assert "mis-shaped (bn1.bias file (64,) model (32,), " in message


def test_a_timm_checkpoint_loads(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = build_model(make_recipe(), 4)
    torch.manual_seed(4)
    ema = build_model(make_recipe(), 4)
    plain, train_py = tmp_path / "plain.pth", tmp_path / "train.pth.tar"
    torch.save({"state_dict": source.state_dict()}, plain)
    # timm's train.py: state_dict, its EMA under state_dict_ema (loaded, as timm does), extras.
    torch.save(
        {
            "epoch": 3,
            "arch": "test_resnet",
            "state_dict": source.state_dict(),
            "state_dict_ema": ema.state_dict(),
        },
        train_py,
    )
    for file, expected in ((plain, source), (train_py, ema)):
        model = build_model(make_recipe(model={"pretrained": str(file)}), 4)
        for key, value in expected.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), (file, key)


def test_a_file_without_weights_is_refused(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    torch.save({"notes": "no weights here"}, path)
    with pytest.raises(TrainInputError, match="holds no state dict"):
        build_model(make_recipe(model={"pretrained": str(path)}), 4)


def test_frozen_stages_stay_put_and_the_head_trains(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    source = tmp_path / "start.pt"
    start = build_model(make_recipe(), 4).state_dict()
    torch.save(start, source)
    recipe = make_recipe(epochs=2, model={"pretrained": str(source), "frozen_stages": 2})
    with pytest.raises(KeyboardInterrupt):  # stopped after epoch 1, then resumed
        fit(recipe, _stop_after_first, tmp_path / "run")
    fit(recipe, checkpoint_dir=tmp_path / "run")
    trained = load_file(tmp_path / "run" / CHECKPOINT_NAME)["model"]
    frozen = ("conv1.", "bn1.", "layer1.", "layer2.")
    for key, value in trained.items():
        if key.startswith(frozen) and not key.endswith("num_batches_tracked"):
            assert torch.equal(value, start[key]), key  # weights and running statistics
    assert not torch.equal(trained["fc.weight"], start["fc.weight"])
    assert not torch.equal(trained["layer3.0.conv1.weight"], start["layer3.0.conv1.weight"])


def _stop_after_first(_metrics: object, _checkpoint: str | None) -> None:
    raise KeyboardInterrupt


def test_frozen_parameters_are_in_no_optimizer_group(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(model={"frozen_stages": 1}, optim={"weight_decay": 0.1})
    model = build_model(recipe, 4)
    grouped = {
        id(p) for g in build_optimizer(model, recipe.optim).param_groups for p in g["params"]
    }
    for name, param in model.named_parameters():
        frozen = name.startswith(("conv1.", "bn1.", "layer1."))
        assert param.requires_grad is not frozen, name
        assert (id(param) in grouped) is not frozen, name
    # Batch norm of frozen stages normalises with its (pretrained) statistics in training too.
    model.train()
    frozen, trained = model.layer1[0].bn1, model.layer2[0].bn1
    before = frozen.running_mean.clone(), trained.running_mean.clone()
    model(torch.randn(2, 3, 16, 16) * 5 + 3)
    assert torch.equal(frozen.running_mean, before[0])
    assert not torch.equal(trained.running_mean, before[1])


def test_frozen_stages_need_a_resnet(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="frozen_stages applies to the ResNet family"):
        build_model(make_recipe(model={"name": "test_vit", "frozen_stages": 1}), 4)


@pytest.mark.parametrize("layer_decay", [None, 0.5])
def test_backbone_lr_scale_sets_the_groups_lrs(
    make_recipe: RecipeFactory, layer_decay: float | None
) -> None:
    # Each parameter's LR is what timm gives it without the knob (optim.lr, or layer_decay's
    # per-layer LR), times backbone_lr_scale for everything but the classifier.
    optim = {"lr": 0.2, "layer_decay": layer_decay}
    plain, scaled = (
        make_recipe(optim={**optim, **extra}, schedule={"name": "constant"})
        for extra in ({}, {"backbone_lr_scale": 0.1})
    )
    model = build_model(plain, 4)
    head = {id(p) for p in model.get_classifier().parameters()}
    lrs = {}
    for recipe in (plain, scaled):
        optimizer = build_optimizer(model, recipe.optim)
        build_scheduler(optimizer, recipe).step(0)
        lrs[recipe.optim.backbone_lr_scale] = {
            id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]
        }
        groups = optimizer.param_groups
    assert {id(p) for p in groups[0]["params"]} <= head  # the head first: the reported lr
    assert lrs[0.1].keys() == lrs[None].keys() == {id(p) for p in model.parameters()}
    for key, lr in lrs[None].items():
        assert lrs[0.1][key] == pytest.approx(lr * (1.0 if key in head else 0.1))
    assert max(lrs[None].values()) == pytest.approx(0.2)
    assert (min(lrs[None].values()) < 0.2) is (layer_decay is not None)


def test_timm_never_loads_its_own_weights(
    make_recipe: RecipeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("timm tried to load (download) its pretrained weights")

    monkeypatch.setattr("timm.models._builder.load_pretrained", refuse)
    path = tmp_path / "w.pt"
    torch.save(build_model(make_recipe(), 4).state_dict(), path)
    build_model(make_recipe(model={"pretrained": str(path), "frozen_stages": 0}), 4)


RECIPE = "model:\n  name: test_resnet\n  pretrained: {value}\nepochs: 1\n"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "names a local weights file, not true; rsearch never downloads weights"),
        ("https://example.org/r18.pth", "is a URL; rsearch never downloads weights"),
        ("hf-hub:timm/resnet18.a1_in1k", "names timm's hub weights, not a local file"),
        ("resnet18.a1_in1k", "names timm's hub weights, not a local file"),
        ("no/such/weights.pt", "do not exist"),
    ],
)
def test_pretrained_must_be_a_local_file(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(value=value))
    with pytest.raises(SpecError) as caught:
        load_recipe(path)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:3:"), problems
    assert message in problems[0]


def test_the_old_checkpoint_name_still_works_with_a_warning(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.touch()
    with pytest.warns(FutureWarning, match="rename it to model.pretrained"):
        recipe = Recipe.model_validate({"model": {"checkpoint": str(weights)}})
    assert recipe.model.pretrained == str(weights)
    assert "checkpoint" not in recipe.model.model_dump()
    assert Recipe.model_validate({"model": {"checkpoint": None}}).model.pretrained is None
    with pytest.raises(ValueError, match="give only pretrained"):
        Recipe.model_validate({"model": {"checkpoint": "a.pt", "pretrained": "b.pt"}})
