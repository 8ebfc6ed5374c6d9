"""Long training checks (minutes on 2 CPU cores): run with `pytest -m slow tests/train`."""

from __future__ import annotations

import pytest

from rsearch.train import fit
from tests.train.train_helpers import RecipeFactory


@pytest.mark.slow
def test_resnet18_reaches_97_percent_on_digits(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(
        model={"name": "resnet18"},
        data={"dataset": "digits", "image_size": 32, "batch_size": 64},
        # digits are not mirror-symmetric and are already centred: no flips, no crops
        augment={"random_resized_crop": False, "hflip": 0.0},
        optim={"name": "sgd", "lr": 0.05},
        epochs=10,
    )
    best = 0.0

    def report(metrics: dict[str, float], _checkpoint: str | None) -> None:
        nonlocal best
        best = max(best, metrics["val_top1"])

    final = fit(recipe, report)
    assert final["val_top1"] >= 97.0
    assert best >= final["val_top1"]


@pytest.mark.slow
def test_compiled_model_trains(make_recipe: RecipeFactory) -> None:
    final = fit(make_recipe(compile=True, epochs=2))
    assert final["train_loss"] > 0 and final["epoch"] == 2
