"""data.progressive: stages of smaller images and less data, their schedule, eval rule, resume."""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rsearch.plan.cost import recipe_fidelity
from rsearch.spec import Recipe
from rsearch.train import TrainInputError, fit
from rsearch.train.bundles import build_data
from rsearch.train.distributed import DistContext
from rsearch.train.measure import forward_flops, train_flops
from rsearch.train.model import build_model
from rsearch.train.optim import build_scheduler
from rsearch.train.orders import SubsetOrder
from rsearch.train.session import build_session, enter_epoch
from rsearch.train.sources import load_source
from rsearch.train.splits import nested_subset
from tests.train.train_helpers import RecipeFactory, Reports

STAGES = [{"epochs": 1, "image_size": 16, "fraction": 0.25}, {"epochs": 1, "image_size": 24}]
"""16 px on a quarter of the data, then 24 px on all of it, then (epoch 3) data.image_size."""

TIMES = {"epoch_s", "train_images_per_s", "device_s", "total_device_s"}
TIMES |= {"infer_images_per_s", "infer_latency_ms", "infer_latency_ms_batch"}
TIMES |= {"infer_spread_pct", "infer_latency_spread_pct"}


def _untimed(reports: Reports) -> list[dict[str, Any]]:
    """Every reported epoch without the wall-clock measurements (which no two runs share)."""
    return [{k: v for k, v in m.items() if k not in TIMES} for m in reports.metrics]


def _staged(make_recipe: RecipeFactory, **extra: Any) -> Recipe:
    # 216 digits (15%) at 32 px in batches of 16; the first stage trains on 56 of them.
    overrides: dict[str, Any] = {
        "data": {
            "dataset": "digits",
            "image_size": 32,
            "fraction": 0.15,
            "batch_size": 16,
            "progressive": STAGES,
        },
        "schedule": {"warmup_epochs": 0},
        "epochs": 3,
    }
    for key, value in extra.items():
        overrides[key] = {**overrides.get(key, {}), **value} if isinstance(value, dict) else value
    return make_recipe(**overrides)


def _lrs(recipe: Recipe) -> list[float]:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=recipe.optim.lr)
    schedule = build_scheduler(optimizer, recipe)
    out = []
    for epoch in range(recipe.epochs):
        schedule.step(epoch)
        out.append(optimizer.param_groups[0]["lr"])
    return out


def _without_stages(recipe: Recipe) -> Recipe:
    data = recipe.data.model_copy(update={"progressive": []})
    return recipe.model_copy(update={"data": data})


def test_stages_train_at_their_fidelity_and_count_its_compute(
    make_recipe: RecipeFactory,
) -> None:
    recipe = _staged(make_recipe)
    reports = Reports()
    fit(recipe, reports)

    assert reports.values("train_image_size") == [16, 24, 32]
    assert reports.values("train_fraction") == [0.25, 1.0, 1.0]
    assert reports.values("eval_image_size") == [32, 32, 32]  # eval_rule: final
    labels = load_source(recipe.data, 32, recipe.seed).train.labels.numpy()
    whole, quarter = len(labels), len(nested_subset(labels, 0.25))
    assert (whole, quarter) == (216, 56)
    seen = [48, 208, 208]  # full batches of 16 only
    model = build_model(recipe, 10)
    expected = [train_flops(model, size) * n for size, n in zip((16, 24, 32), seen, strict=True)]
    assert reports.values("epoch_train_flops") == expected
    assert reports.values("epoch_eval_flops") == [forward_flops(model, 32) * 360] * 3
    assert expected[0] < expected[1] < expected[2]  # fewer and smaller images cost less
    assert reports.values("fidelity") == pytest.approx(list(accumulate(recipe_fidelity(recipe))))
    assert reports.values("fidelity")[-1] < 3  # two cheap epochs and a full one
    # One schedule spans the stages: each epoch's rate is the unstaged recipe's.
    assert reports.values("lr") == pytest.approx(_lrs(_without_stages(recipe)))


def test_restart_per_stage_gives_each_stretch_its_own_schedule(
    make_recipe: RecipeFactory,
) -> None:
    stages = [{"epochs": 2, "image_size": 16}, {"epochs": 1, "fraction": 0.5}]
    recipe = make_recipe(
        data={"progressive": stages},
        schedule={"warmup_epochs": 1, "warmup_lr": 0.001},
        optim={"lr": 0.1},
        epochs=6,
    )
    restarted = recipe.model_copy(
        update={"schedule": recipe.schedule.model_copy(update={"restart_per_stage": True})}
    )
    assert _lrs(recipe) == _lrs(_without_stages(recipe))  # by default one schedule spans all
    # stretches of 2, 1 and 3 epochs, each warming up from warmup_lr and decaying on its own
    lrs = _lrs(restarted)
    assert lrs == pytest.approx([*_lrs(_like(recipe, 2)), 0.001, *_lrs(_like(recipe, 3))])
    assert lrs[:4] == pytest.approx([0.001, 0.05, 0.001, 0.001])  # cosine: 0.1 at 0, 0.05 at 1
    assert lrs != pytest.approx(_lrs(recipe))


def _like(recipe: Recipe, epochs: int) -> Recipe:
    return _without_stages(recipe).model_copy(update={"epochs": epochs})


@pytest.mark.parametrize("restart", [False, True])
def test_resume_after_the_first_stage_continues_exactly(
    make_recipe: RecipeFactory, tmp_path: Path, restart: bool
) -> None:
    recipe = _staged(
        make_recipe,
        schedule={"restart_per_stage": restart, "warmup_epochs": 1},
        augment={"randaugment_layers": 1, "mixup": 0.2},
        deterministic=True,
    )
    straight = Reports()
    fit(recipe, straight, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, Reports(stop_after=1), tmp_path / "resumed")
    resumed = Reports()
    fit(recipe, resumed, tmp_path / "resumed")

    assert resumed.values("epoch") == [2, 3]
    assert _untimed(resumed) == _untimed(straight)[1:]
    assert straight.values("lr") == pytest.approx(_lrs(recipe))


def test_fixres_evaluates_at_the_train_size_times_the_ratio_when_streamed(
    make_recipe: RecipeFactory, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rsearch.train.session as session_module

    seen: set[tuple[bool, int]] = set()
    build = session_module.build_model

    def spy(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda m, i: seen.add((m.training, i[0].shape[-1])))
        return model

    monkeypatch.setattr(session_module, "build_model", spy)
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),  # 12 training and 12 validation images
            "num_workers": 1,  # streamed: the loaders' transforms follow the stage
            "batch_size": 4,
            "image_size": 24,
            "eval_rule": "fixres",
            "fixres_ratio": 1.25,
            "progressive": [{"epochs": 1, "image_size": 16, "fraction": 0.5}],
        },
        epochs=2,
    )
    reports = Reports()
    final = fit(recipe, reports)
    assert reports.values("eval_image_size") == [20, 30]
    assert reports.values("train_fraction") == [0.5, 1.0]
    model = build(recipe, 3)
    # the half-share stage: 6 images, one full batch of 4
    assert reports.values("epoch_train_flops") == [
        train_flops(model, 16) * 4,
        train_flops(model, 24) * 12,
    ]
    assert reports.values("epoch_eval_flops") == [forward_flops(model, s) * 12 for s in (20, 30)]
    assert final["gflops"] == pytest.approx(forward_flops(model, 30) / 2e9)
    assert {size for training, size in seen if training} == {16, 24}
    assert {size for training, size in seen if not training} == {20, 30}


def test_stage_subsets_are_nested_stratified_and_fixed() -> None:
    labels = np.repeat(np.arange(4), [100, 40, 20, 2])
    quarter, half = nested_subset(labels, 0.25), nested_subset(labels, 0.5)
    assert set(quarter) < set(half) < set(range(len(labels)))
    assert np.bincount(labels[quarter]).tolist() == [25, 10, 5, 1]  # every class kept
    assert np.bincount(labels[half]).tolist() == [50, 20, 10, 1]
    assert np.array_equal(nested_subset(labels, 0.25), quarter)


def test_a_stage_trains_on_its_share_of_the_fraction(make_recipe: RecipeFactory) -> None:
    recipe = _staged(make_recipe, seed=7)
    data = build_data(recipe, DistContext(), torch.device("cpu"), "bilinear", (0.5,) * 3)
    sampler = data.train.sampler  # type: ignore[attr-defined]
    assert isinstance(sampler, SubsetOrder)
    labels = load_source(recipe.data, 32, 0).train.labels.numpy()  # 15% of digits, any seed
    assert sorted(sampler) == nested_subset(labels, 0.25).tolist()


def test_session_remakes_transforms_for_each_stage(make_recipe: RecipeFactory) -> None:
    recipe = _staged(make_recipe, augment={"randaugment_layers": 1}, data={"eval_rule": "fixres"})
    session = build_session(recipe, DistContext(), "cpu")
    sizes = []
    for epoch in range(3):
        enter_epoch(session, epoch)
        randaugment = session.train_transform.randaugment
        assert randaugment is not None
        translate = randaugment.ops[0].hparams["translate_const"]
        sizes.append((session.train_transform.size, translate, session.eval_transform.size))
    assert sizes == [(16, 7, 18), (24, 10, 28), (32, 14, 37)]  # round(size x 1.15)


@pytest.mark.parametrize("index", [0, 1])
def test_a_stage_share_under_one_batch_is_refused(make_recipe: RecipeFactory, index: int) -> None:
    stages: list[dict[str, Any]] = [{"epochs": 1, "image_size": 16}] * 2
    stages[index] = {"epochs": 1, "fraction": 0.05}  # 10 of the 216 images
    recipe = _staged(make_recipe, data={"progressive": stages})
    with pytest.raises(TrainInputError, match=rf"data\.progressive\[{index}\]\.fraction 0\.05"):
        build_data(recipe, DistContext(), torch.device("cpu"), "bilinear", (0.5,) * 3)
