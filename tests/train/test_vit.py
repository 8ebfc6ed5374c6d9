"""ViTs and MLP-Mixers at the data's resolution; layer-wise LR decay."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rsearch.spec import Recipe
from rsearch.train import TrainInputError, fit
from rsearch.train.model import build_model
from rsearch.train.optim import base_optimizer, build_optimizer, build_scheduler
from tests.train.train_helpers import RecipeFactory, Reports

DIGITS: dict[str, Any] = {"dataset": "digits", "image_size": 32, "fraction": 0.05, "batch_size": 24}
"""72 digits at 32 px: three steps of an epoch (evaluated on the 360 validation digits)."""


def _small(name: str, make_recipe: RecipeFactory, **extra: Any) -> Recipe:
    return make_recipe(
        model={"name": name, "patch_size": 4},
        data={**DIGITS, **extra},
        optim={"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
    )


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "mixer_s16_224"])
def test_vit_and_mixer_train_an_epoch_at_32_px(name: str, make_recipe: RecipeFactory) -> None:
    reports = Reports()
    fit(_small(name, make_recipe), reports)

    assert reports.values("train_image_size") == [32]
    assert reports.values("eval_image_size") == [32]
    assert torch.isfinite(torch.tensor(reports.values("train_loss"))).all()


def test_the_patch_size_sets_the_token_count(make_recipe: RecipeFactory) -> None:
    vit = build_model(_small("vit_tiny_patch16_224", make_recipe), 10)
    mixer = build_model(_small("mixer_s16_224", make_recipe), 10)

    assert vit.patch_embed.num_patches == 64  # type: ignore[union-attr]
    assert mixer.stem.num_patches == 64  # type: ignore[union-attr]


def test_a_vit_evaluated_at_another_size_takes_both(make_recipe: RecipeFactory) -> None:
    model = build_model(_small("vit_tiny_patch16_224", make_recipe, eval_image_size=48), 10)

    for size in (32, 48):
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_a_mixer_refuses_a_second_resolution(make_recipe: RecipeFactory) -> None:
    recipe = _small("mixer_s16_224", make_recipe, eval_image_size=48)

    with pytest.raises(TrainInputError, match=r"one resolution.*\[32, 48\]"):
        build_model(recipe, 10)


def test_a_patch_that_does_not_divide_the_size_is_refused(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(model={"name": "vit_tiny_patch16_224"}, data={**DIGITS, "image_size": 24})

    with pytest.raises(TrainInputError, match=r"16 px patches.*one of \[2, 3, 4, 6, 8, 12, 24\]"):
        build_model(recipe, 10)


def test_a_patch_size_on_a_resnet_is_refused(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="patch_size applies to ViTs"):
        build_model(make_recipe(model={"patch_size": 4}), 4)


@pytest.mark.parametrize("name", ["adamw", "sam"])
def test_layer_decay_gives_each_layer_its_own_lr(name: str, make_recipe: RecipeFactory) -> None:
    recipe = _small("vit_tiny_patch16_224", make_recipe)
    optim = {"name": name, "sam_base": "adamw", "lr": 1e-3, "layer_decay": 0.5}
    recipe = recipe.model_copy(update={"optim": recipe.optim.model_validate(optim)})
    optimizer = base_optimizer(build_optimizer(build_model(recipe, 10), recipe.optim))
    build_scheduler(optimizer, recipe).step(0)

    lrs = sorted({round(g["lr"], 12) for g in optimizer.param_groups})
    assert len(lrs) == 14  # the embeddings, 12 blocks, the head
    assert lrs[-1] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-3 * 0.5**13)


def test_without_layer_decay_every_group_has_the_lr(make_recipe: RecipeFactory) -> None:
    recipe = _small("vit_tiny_patch16_224", make_recipe)
    optimizer = base_optimizer(build_optimizer(build_model(recipe, 10), recipe.optim))

    assert {g["lr"] for g in optimizer.param_groups} == {1e-3}
