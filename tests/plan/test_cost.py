"""A trial's estimate against the training core's definitions and the data code's real counts."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import DistributedSampler, RandomSampler

from rsearch.errors import UserError
from rsearch.plan import cost_to_epoch, epochs_to_reach, estimate_trial
from rsearch.plan.cost import EpochCost, TrialCost, eval_size_at, images_seen
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Resources
from rsearch.train.data import MemoryBatches
from rsearch.train.measure import epoch_fidelity, forward_flops, train_flops
from rsearch.train.model import build_model
from rsearch.train.sources import load_source
from rsearch.train.splits import ImageArray, stratified_subset
from tests.plan.helpers import SECONDS_PER_IMAGE, ConstantSpeed


def _progressive(size: int, **overrides: Any) -> Recipe:
    recipe = {
        "model": {"name": "test_resnet"},
        "data": {
            "dataset": "digits",
            "image_size": size,
            "eval_image_size": size + 8,
            "batch_size": 32,
            "fraction": 0.5,
            "progressive": [
                {"epochs": 1, "image_size": size // 2, "fraction": 0.3},
                {"epochs": 1, "image_size": 3 * size // 4},
            ],
        },
        "ema": {"enabled": True},
        "epochs": 3,
    }
    return Recipe.model_validate({**recipe, **overrides})


def _real_images(subset: int, batch: int, workers: int, repeats: int = 1) -> int:
    """Images an epoch trains on, from the loaders' own samplers and batching."""
    per_rank_batch = batch // workers
    sampler: Any
    if workers == 1:  # one process: a random order of the subset, batched by MemoryBatches
        sampler = RandomSampler(range(subset))
    elif repeats > 1:
        sampler = RepeatAugSampler(range(subset), num_replicas=workers, rank=0, num_repeats=repeats)
    else:
        sampler = DistributedSampler(range(subset), num_replicas=workers, rank=0)
    split = ImageArray(torch.zeros(subset, 3, 1, 1, dtype=torch.uint8), torch.zeros(subset))
    batches = MemoryBatches(split, per_rank_batch, sampler, torch.device("cpu"), drop_last=True)
    return workers * per_rank_batch * len(batches)


@pytest.mark.parametrize("size", [32, 48])
def test_flops_are_train_flops_times_the_images_the_data_code_gives(size: int) -> None:
    recipe = _progressive(size)
    cost = estimate_trial(recipe, Resources(), ConstantSpeed())
    model = build_model(recipe, 10, load_weights=False)  # a real model, on the CPU
    split = load_source(recipe.data, size, recipe.seed).train
    labels = split.labels.numpy()
    subsets = [len(stratified_subset(labels, 0.3)), len(labels), len(labels)]
    sizes = [size // 2, 3 * size // 4, size]
    per_image = {s: train_flops(model, s) for s in sizes}
    assert [e.train_size for e in cost.epochs] == sizes
    for epoch, subset, train_size in zip(cost.epochs, subsets, sizes, strict=True):
        images = _real_images(subset, 32, 1)
        assert epoch.train_images == images
        assert epoch.train_flops == per_image[train_size] * images
        # EMA: the validation split is evaluated twice, at the final eval size
        assert epoch.eval_images == 2 * 360
        assert epoch.eval_flops == forward_flops(model, size + 8) * 2 * 360
    fidelity = [e.fidelity for e in cost.epochs]
    assert fidelity == [
        per_image[s] * share / per_image[size]
        for s, share in zip(sizes, [0.3, 1.0, 1.0], strict=True)
    ]
    assert fidelity[0] < fidelity[1] < fidelity[2] == 1.0


def test_fidelity_is_the_training_cores() -> None:
    recipe = _progressive(32)
    model = build_model(recipe, 10, load_weights=False)
    cost = estimate_trial(recipe, Resources(), ConstantSpeed())
    assert [e.fidelity for e in cost.epochs] == epoch_fidelity(model, recipe)


@pytest.mark.parametrize(
    ("subset", "batch", "workers", "repeats"),
    [
        (1437, 64, 1, 1),
        (718, 32, 2, 1),
        (431, 30, 3, 1),
        (1437, 64, 2, 3),
        (200, 16, 4, 2),  # below RepeatAugSampler's rounding of 256
    ],
)
def test_images_seen_follow_the_samplers(
    subset: int, batch: int, workers: int, repeats: int
) -> None:
    assert images_seen(subset, batch, workers, repeats) == _real_images(
        subset, batch, workers, repeats
    )


def test_batch_that_does_not_split_across_workers_is_a_user_error() -> None:
    with pytest.raises(UserError, match="does not split evenly across 3 workers"):
        images_seen(100, 32, 3)


def test_fixres_evaluates_at_the_train_size_times_the_ratio() -> None:
    recipe = _progressive(32)
    recipe.data.eval_rule = "fixres"
    assert [eval_size_at(recipe, e) for e in range(3)] == [18, 28, 37]  # 16, 24, 32 x 1.15
    cost = estimate_trial(recipe, Resources(), ConstantSpeed())
    assert [e.eval_size for e in cost.epochs] == [18, 28, 37]


def test_sam_and_workers_in_flops_and_device_seconds() -> None:
    recipe = _progressive(32, optim={"name": "sam"})
    resources = Resources(workers_per_trial=2, cpus_per_worker=1)
    cost = estimate_trial(recipe, resources, ConstantSpeed())
    model = build_model(recipe, 10, load_weights=False)
    first = cost.epochs[0]
    # SAM: two forward/backward passes a step, in FLOPs as the training core counts them
    assert first.train_flops == train_flops(model, 16) * 2 * first.train_images
    per_eval = SECONDS_PER_IMAGE * forward_flops(model, 40) / train_flops(model, 16)
    # ... and in time; evaluation: a forward at the eval size, priced by FLOPs
    expected = first.train_images * SECONDS_PER_IMAGE * 2 + first.eval_images * per_eval
    assert first.device_s == pytest.approx(expected)
    spend = cost_to_epoch(cost, 3)
    assert spend.wall_s == pytest.approx(spend.device_s / 2)
    assert cost.train_images_per_s == pytest.approx(1 / SECONDS_PER_IMAGE)


def _handmade(fidelities: list[float]) -> TrialCost:
    epochs = tuple(EpochCost(16, 16, 100, 10, 1000.0 * f, 10.0, f, 5.0 * f) for f in fidelities)
    return TrialCost(epochs, "cpu", 2, "measured", 20.0)


def test_cost_to_epoch_sums_and_clamps() -> None:
    cost = _handmade([0.25, 0.5, 1.0, 1.0])
    two = cost_to_epoch(cost, 2)
    assert (two.epochs, two.train_flops, two.eval_flops) == (2.0, 750.0, 20.0)
    assert (two.fidelity, two.device_s, two.wall_s) == (0.75, 3.75, 1.875)
    assert two.flops == 770.0
    assert cost_to_epoch(cost, 9) == cost_to_epoch(cost, 4)
    assert cost_to_epoch(cost, 0).flops == 0.0


@pytest.mark.parametrize(
    ("milestone", "unit", "epochs"),
    [
        (1.0, "epochs", 1),
        (1.5, "epochs", 2),  # epochs are reported whole: 1.5 is reached after epoch 2
        (7.0, "epochs", 4),  # never reached: the trial ends first
        (0.25, "compute", 1),
        (0.5, "compute", 2),
        (0.75, "compute", 2),  # 0.25 + 0.5 reaches it exactly
        (1.0, "compute", 3),
        (2.75, "compute", 4),
        (9.0, "compute", 4),
    ],
)
def test_epochs_to_reach_a_milestone(milestone: float, unit: Any, epochs: int) -> None:
    assert epochs_to_reach(_handmade([0.25, 0.5, 1.0, 1.0]), milestone, unit) == epochs


def test_estimates_count_no_fidelity_without_stages() -> None:
    recipe = Recipe.model_validate({"model": {"name": "test_resnet"}, "epochs": 2})
    cost = estimate_trial(recipe, Resources(), ConstantSpeed())
    assert [e.fidelity for e in cost.epochs] == [1.0, 1.0]
    assert math.isclose(cost.epochs[0].train_flops, cost.epochs[1].train_flops)
