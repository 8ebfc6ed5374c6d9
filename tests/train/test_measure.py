"""Cost and speed measurements: params, FLOPs (multiply-adds), inference throughput/latency."""

from __future__ import annotations

import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rsearch.train import TrainInputError, measure, model_cost
from rsearch.train.measure import cost, inference_speed
from rsearch.train.model import build_model
from tests.train.train_helpers import RecipeFactory


def test_resnet50_cost_matches_the_published_numbers(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(
        model={"name": "resnet50"},
        data={"image_size": 160, "eval_image_size": 224, "num_classes": 1000},
    )
    result = model_cost(recipe)
    assert result["params_m"] == pytest.approx(25.56, abs=0.01)
    assert result["gflops"] == pytest.approx(4.09, abs=0.02)  # multiply-adds, as papers count


def test_cost_follows_resolution_and_scaling(make_recipe: RecipeFactory) -> None:
    base = model_cost(make_recipe(model={"name": "resnet18"}, data={"image_size": 64}))
    double = model_cost(make_recipe(model={"name": "resnet18"}, data={"image_size": 128}))
    assert double["gflops"] == pytest.approx(4 * base["gflops"], rel=0.05)
    assert double["params_m"] == base["params_m"]
    small_stem = model_cost(
        make_recipe(model={"name": "resnet18", "small_stem": True}, data={"image_size": 64})
    )
    assert small_stem["gflops"] > 10 * base["gflops"]
    narrow = model_cost(
        make_recipe(model={"name": "resnet18", "width_multiplier": 0.5}, data={"image_size": 64})
    )
    assert narrow["params_m"] < 0.3 * base["params_m"]


def test_model_cost_matches_the_built_model(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(model={"depth_multiplier": 2.0})
    model = build_model(recipe, 4)
    assert model_cost(recipe) == pytest.approx(cost(model, 16))


def test_model_cost_counts_image_folder_classes(
    make_recipe: RecipeFactory, image_folder: Path
) -> None:
    folder = make_recipe(data={"dataset": "image_folder", "path": str(image_folder)})
    five = make_recipe(data={"num_classes": 5})
    three = make_recipe(data={"num_classes": 3})
    assert model_cost(folder) == pytest.approx(model_cost(three))
    assert model_cost(folder)["params_m"] < model_cost(five)["params_m"]


def test_model_cost_rejects_bad_models(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="ResNet family"):
        model_cost(make_recipe(model={"name": "test_vit", "depth_multiplier": 2.0}))


def test_inference_speed(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(), 4).train()
    speed = inference_speed(
        model, 16, torch.device("cpu"), None, channels_last=True, batch=16, window_s=0.01
    )
    assert set(speed) == {
        "infer_images_per_s",
        "infer_latency_ms",
        "infer_latency_ms_batch",
        "infer_spread_pct",
        "infer_latency_spread_pct",
    }
    assert all(v > 0 for v in speed.values())
    assert speed["infer_images_per_s"] == pytest.approx(16e3 / speed["infer_latency_ms_batch"])
    assert model.training  # put back as it was


def test_time_passes_keeps_the_median_window_and_their_spread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fake clock that only the model moves: the warm-up passes last 50 s, the timed ones
    # 1, 2, 3, 4 and 100 s. With no window time each window times one pass (MIN_PASSES).
    clock = {"now": 0.0}
    durations = iter([50.0, 50.0, 1.0, 2.0, 3.0, 4.0, 100.0])

    def model(x: torch.Tensor) -> torch.Tensor:
        clock["now"] += next(durations)
        return x

    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    assert (measure.WARMUP_PASSES, measure.MIN_PASSES) == (2, 1)
    timing = measure.time_passes(model, torch.zeros(2, 3), None, window_s=0.0, repeats=5)
    assert next(durations, None) is None  # every pass ran, no more
    assert timing.seconds == 3.0  # the disturbed window does not move the median
    cv = 100 * statistics.stdev([1, 2, 3, 4, 100]) / statistics.fmean([1, 2, 3, 4, 100])
    assert timing.spread_pct == pytest.approx(cv)
