"""Multi-resolution training and evaluation (data.train_resolutions, data.eval_resolutions)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from rsearch.spec import Recipe
from rsearch.spec.metric_names import metric_info
from rsearch.train import TrainInputError, fit
from rsearch.train.distributed import DistContext
from rsearch.train.measure import forward_flops, train_flops
from rsearch.train.model import build_model
from rsearch.train.session import build_session
from rsearch.train.stages import resolution_draws
from tests.train.train_helpers import RecipeFactory, Reports

TRAIN = [12, 16, 20]
TEST = [12, 16, 24]
"""Test resolutions: 16 is the usual evaluation's (image_size), 12 and 24 are extra passes."""

VAL_IMAGES = 12
"""The synthetic validation split of TINY's 64 training images (a fifth): two batches."""


def _multires(make_recipe: RecipeFactory, **extra: Any) -> Recipe:
    # 64 synthetic images (TINY) in batches of 8: eight steps an epoch.
    data = {
        "batch_size": 8,
        "train_resolutions": TRAIN,
        "eval_resolutions": TEST,
        **extra.pop("data", {}),
    }
    return make_recipe(data=data, schedule={"warmup_epochs": 0}, **extra)


class InputSizes:
    """Records the side of every batch the model takes, training and evaluation apart."""

    def __init__(self, model: torch.nn.Module):
        self.train: list[int] = []
        self.eval: list[int] = []
        model.register_forward_pre_hook(self._record)

    def _record(self, module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        (self.train if module.training else self.eval).append(args[0].shape[-1])


def _record_sizes(monkeypatch: pytest.MonkeyPatch) -> list[InputSizes]:
    """Hook every model fit builds; returns the list the recorders are appended to."""
    recorders: list[InputSizes] = []

    def hooked(recipe: Recipe, num_classes: int) -> torch.nn.Module:
        model = build_model(recipe, num_classes)
        recorders.append(InputSizes(model))
        return model

    monkeypatch.setattr("rsearch.train.session.build_model", hooked)
    return recorders


def test_training_sees_the_configured_resolutions(
    make_recipe: RecipeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders = _record_sizes(monkeypatch)
    recipe = _multires(make_recipe, epochs=2)
    fit(recipe)

    sizes = recorders[0]
    draws = resolution_draws(recipe, 0, 8) + resolution_draws(recipe, 1, 8)
    # Counting FLOPs runs the model once per resolution before training starts; skip those.
    assert sizes.train[-16:] == draws
    assert set(draws) == set(TRAIN)
    # Each epoch: the usual evaluation at 16 (two batches), then the extra test resolutions
    # 12 and 24 (16 is the usual evaluation's: not evaluated twice).
    epoch = [16] * 2 + [12] * 2 + [24] * 2
    assert _contains(sizes.eval, epoch * 2)


def _contains(seq: list[int], run: list[int]) -> bool:
    return any(seq[i : i + len(run)] == run for i in range(len(seq) - len(run) + 1))


def test_single_resolution_when_switched_off(
    make_recipe: RecipeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders = _record_sizes(monkeypatch)
    fit(_multires(make_recipe, data={"multi_resolution": False, "eval_resolutions": []}))
    assert recorders[0].train[-8:] == [16] * 8


def test_each_test_resolution_is_reported_every_epoch(make_recipe: RecipeFactory) -> None:
    reports = Reports()
    fit(_multires(make_recipe, epochs=2), reports)

    at = {f"val_top1@{n}" for n in TEST} | {f"val_loss@{n}" for n in TEST} | {"val_top1@mean"}
    for metrics in reports.metrics:
        assert at <= set(metrics)
        assert {k for k in metrics if "@" in k} == at
        assert all(metric_info(k) is not None for k in metrics)
        assert metrics["val_top1@mean"] == pytest.approx(
            sum(float(metrics[f"val_top1@{n}"]) for n in TEST) / len(TEST)
        )
        # The test resolution equal to the usual one is that evaluation, not another pass.
        assert metrics["val_top1@16"] == metrics["val_top1"]
        assert metrics["val_loss@16"] == metrics["val_loss"]
    assert reports.metrics[0]["val_loss@12"] != reports.metrics[0]["val_loss@24"]


def test_flops_count_every_resolution_trained_and_tested(make_recipe: RecipeFactory) -> None:
    recipe = _multires(make_recipe)
    draws = Counter(resolution_draws(recipe, 0, 8))
    final = fit(recipe)

    model = build_model(recipe, 4)
    per_image = {n: train_flops(model, n) for n in TRAIN}
    assert final["epoch_train_flops"] == pytest.approx(
        sum(per_image[n] * 8 * count for n, count in draws.items())
    )
    forward = sum(forward_flops(model, n) for n in TEST)  # each evaluates every val image
    assert final["epoch_eval_flops"] == pytest.approx(forward * VAL_IMAGES)
    assert final["epoch_eval_flops"] == pytest.approx(
        final["total_flops"] - final["epoch_train_flops"]
    )


def test_resume_draws_the_same_resolution_sequence(
    make_recipe: RecipeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _multires(make_recipe, epochs=2, deterministic=True)
    recorders = _record_sizes(monkeypatch)
    straight = Reports()
    fit(recipe, straight, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, Reports(stop_after=1), tmp_path / "resumed")
    resumed = Reports()
    fit(recipe, resumed, tmp_path / "resumed")

    assert recorders[2].train[-8:] == recorders[0].train[-8:] == resolution_draws(recipe, 1, 8)
    timed = ("epoch_s", "train_images_per_s", "device_s", "total_device_s")
    for a, b in zip(straight.metrics[1:], resumed.metrics, strict=True):
        assert {k: v for k, v in a.items() if "@" in k} == {k: v for k, v in b.items() if "@" in k}
        assert a["train_loss"] == b["train_loss"] and a["epoch"] == b["epoch"]
        assert all(k in b for k in timed)
    assert resolution_draws(recipe, 0, 8) != resolution_draws(recipe, 1, 8)


def test_streamed_data_refuses_train_resolutions(
    make_recipe: RecipeFactory, image_folder: Path
) -> None:
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),
            "num_workers": 1,
            "batch_size": 12,
            "train_resolutions": [16, 24],
        }
    )
    with pytest.raises(TrainInputError, match="train_resolutions needs in-memory data"):
        build_session(recipe, DistContext(), "cpu")


def test_streamed_data_evaluates_each_test_resolution(
    make_recipe: RecipeFactory, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders = _record_sizes(monkeypatch)
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),
            "num_workers": 1,
            "batch_size": 12,
            "eval_resolutions": [12, 20],
        }
    )
    final = fit(recipe)
    # 12 validation images, one batch at each of 16 (usual), 12 and 20 px, resized in workers.
    assert _contains(recorders[0].eval, [16, 12, 20])
    assert {"val_top1@12", "val_top1@20", "val_top1@mean"} <= set(final)
