"""Compute accounting: each epoch's FLOPs and device-seconds, exact and carried over resumes."""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path

import pytest

from rsearch.spec import Recipe
from rsearch.train import fit
from rsearch.train.measure import forward_flops, train_flops
from rsearch.train.model import build_model
from tests.train.ood_helpers import write_rotated_digits
from tests.train.train_helpers import RecipeFactory, Reports


def _per_image(recipe: Recipe, size: int) -> tuple[float, float]:
    model = build_model(recipe, recipe.data.num_classes)
    return train_flops(model, size), forward_flops(model, size)


def _recipe(make_recipe: RecipeFactory, **extra: object) -> Recipe:
    # 70 training images in batches of 16: 4 full batches (64 images) an epoch, the rest
    # dropped; 14 validation images.
    return make_recipe(data={"synthetic_size": 70}, epochs=3, **extra)


def test_epoch_flops_are_per_image_flops_times_images_seen(
    make_recipe: RecipeFactory,
) -> None:
    recipe = _recipe(make_recipe, ema={"enabled": True})
    train, forward = _per_image(recipe, 16)
    reports = Reports()
    fit(recipe, reports)
    assert reports.values("epoch_train_flops") == [train * 64] * 3
    assert reports.values("epoch_eval_flops") == [forward * 14 * 2] * 3  # EMA: a second pass
    per_epoch = train * 64 + forward * 14 * 2
    assert reports.values("total_flops") == pytest.approx([per_epoch, 2 * per_epoch, 3 * per_epoch])
    assert reports.values("fidelity") == [1.0, 2.0, 3.0]
    assert reports.values("train_image_size") == [16] * 3
    assert reports.values("train_fraction") == [1.0] * 3
    assert reports.values("eval_image_size") == [16] * 3
    assert reports.values("device_s") == reports.values("epoch_s")  # one worker
    assert reports.values("total_device_s") == pytest.approx(
        list(accumulate(reports.values("device_s")))
    )
    assert {m["device_kind"] for m in reports.metrics} == {"cpu"}


def test_sam_counts_its_two_passes_and_eval_resolution_is_its_own(
    make_recipe: RecipeFactory,
) -> None:
    recipe = make_recipe(optim={"name": "sam"}, data={"synthetic_size": 70, "eval_image_size": 24})
    train, _ = _per_image(recipe, 16)
    _, forward = _per_image(recipe, 24)
    final = fit(recipe)
    assert final["epoch_train_flops"] == train * 64 * 2
    assert final["epoch_eval_flops"] == forward * 14
    assert final["eval_image_size"] == 24
    assert forward > _per_image(recipe, 16)[1]  # the larger resolution costs more


def test_totals_continue_across_a_resume(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    recipe = _recipe(make_recipe)
    straight = Reports()
    fit(recipe, straight, tmp_path / "straight")
    crashed = Reports(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, crashed, tmp_path / "resumed")
    resumed = Reports()
    fit(recipe, resumed, tmp_path / "resumed")

    assert resumed.values("epoch") == [3]
    for key in ("epoch_train_flops", "epoch_eval_flops", "total_flops", "fidelity"):
        assert resumed.values(key) == straight.values(key)[2:], key
    before = sum(crashed.values("device_s"))
    assert resumed.values("total_device_s") == [before + resumed.values("device_s")[0]]


def test_evaluation_splits_are_counted_in_the_evaluation_flops(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    rotated = write_rotated_digits(tmp_path / "rotated", per_class=4)  # 40 images
    data = {"dataset": "digits", "image_size": 16, "fraction": 0.1, "batch_size": 16}
    recipe = make_recipe(data={**data, "eval_splits": {"rotated": str(rotated)}}, epochs=1)
    forward = forward_flops(build_model(recipe, 10), 16)
    reports = Reports()
    fit(recipe, reports)
    assert reports.values("epoch_eval_flops") == [forward * (360 + 40)]  # digits' val + split
