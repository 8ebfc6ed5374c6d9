"""Class imbalance: balanced sampler, class-weighted loss, stratified val carve, a short fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import chisquare
from sklearn.datasets import load_digits
from sklearn.utils.class_weight import compute_class_weight

from rsearch.spec.data_section import DataConfig
from rsearch.spec.recipe import LossConfig
from rsearch.train import TrainInputError, fit
from rsearch.train.balance import DistributedBalancedSampler, balanced_sampler, class_weights
from rsearch.train.bundles import build_data
from rsearch.train.carve import stratified_carve
from rsearch.train.checkpoint import CHECKPOINT_NAME, load_file
from rsearch.train.distributed import DistContext
from rsearch.train.image_counts import count_images
from rsearch.train.optim import build_mixup, build_train_loss
from rsearch.train.orders import SubsetOrder
from rsearch.train.sources import load_source
from tests.train.train_helpers import RecipeFactory

CPU = torch.device("cpu")
ONE = DistContext()
SKEWED = np.array([0] * 900 + [1] * 100)
"""A 90/10 two-class training split."""


def _draws(sampler: Any, epochs: int = 1) -> list[int]:
    out: list[int] = []
    for epoch in range(epochs):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        out += list(sampler)
    return out


def test_balanced_sampler_draws_classes_evenly() -> None:
    sampler = balanced_sampler(SKEWED, 0, ONE, torch.Generator().manual_seed(0))
    drawn = SKEWED[_draws(sampler, epochs=10)]
    counts = np.bincount(drawn, minlength=2)
    assert counts.sum() == 10 * len(SKEWED)  # an epoch's worth of draws each epoch
    # Uniform order would give 9000/1000; balanced draws are a fair coin (p of chi-square).
    assert chisquare(counts).pvalue > 1e-3, counts
    assert abs(counts[1] / counts.sum() - 0.5) < 0.03


def test_uniform_sampler_keeps_the_imbalance(make_recipe: RecipeFactory) -> None:
    # The comparison that makes the test above mean something: today's order is 90/10.
    from rsearch.train.orders import train_sampler

    recipe = make_recipe()
    order = train_sampler(len(SKEWED), recipe, ONE, torch.Generator().manual_seed(0))
    assert np.bincount(SKEWED[list(order)]).tolist() == [900, 100]


def test_balanced_sampler_resumes_the_same_sequence() -> None:
    straight_gen = torch.Generator().manual_seed(7)
    straight = balanced_sampler(SKEWED, 7, ONE, straight_gen)
    epochs = [list(straight) for _ in range(3)]

    first_gen = torch.Generator().manual_seed(7)
    assert list(balanced_sampler(SKEWED, 7, ONE, first_gen)) == epochs[0]
    saved = first_gen.get_state()  # what a checkpoint keeps of the order
    resumed_gen = torch.Generator()
    resumed_gen.set_state(saved)
    resumed = balanced_sampler(SKEWED, 7, ONE, resumed_gen)
    assert [list(resumed) for _ in range(2)] == epochs[1:]
    assert epochs[0] != epochs[1]


def test_balanced_sampler_shards_across_two_ranks() -> None:
    world = [DistContext(rank=r, world_size=2) for r in (0, 1)]
    samplers = [balanced_sampler(SKEWED, 5, ctx, None) for ctx in world]
    one = DistributedBalancedSampler(SKEWED, DistContext(rank=0, world_size=1), seed=5)
    for sampler in [*samplers, one]:
        sampler.set_epoch(4)
    whole = list(one)  # world size 1 keeps every position of the same seeded draw
    shards = [list(s) for s in samplers]
    assert [len(s) for s in shards] == [500, 500] == [len(s) for s in samplers]
    # The ranks deal out that one draw: disjoint positions that together make the epoch.
    assert shards[0] == whole[0::2] and shards[1] == whole[1::2]
    assert abs(SKEWED[shards[0] + shards[1]].mean() - 0.5) < 0.06
    samplers[0].set_epoch(5)
    assert list(samplers[0]) != shards[0]  # each epoch draws afresh


def test_balanced_over_a_progressive_share(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 45, 1: 5})
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(root),
            "val_fraction": 0.2,
            "batch_size": 4,
            "sampler": "balanced",
            "progressive": [{"epochs": 1, "fraction": 0.5}],
        },
        epochs=2,
    )
    data = build_data(recipe, ONE, CPU, "bilinear", (0.5,) * 3)
    labels = data.maker.train_labels
    assert np.bincount(labels).tolist() == [36, 4]
    sampler = data.maker.sampler(0.5)
    assert isinstance(sampler, SubsetOrder)
    subset = set(sampler.indices)
    assert np.bincount(labels[sorted(subset)]).tolist() == [18, 2]  # the nested share
    drawn = [i for _ in range(40) for i in sampler]
    assert set(drawn) <= subset
    assert abs(labels[drawn].mean() - 0.5) < 0.08


def test_balanced_order_feeds_streamed_loaders(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 45, 1: 5})
    data = {"dataset": "image_folder", "path": str(root), "val_fraction": 0.2, "batch_size": 4}
    recipe = make_recipe(data={**data, "sampler": "balanced", "num_workers": 1})
    bundle = build_data(recipe, ONE, CPU, "bilinear", (0.5,) * 3)
    assert not bundle.in_memory
    labels = torch.cat([lab for _ in range(3) for _, lab in bundle.train])
    assert len(labels) == 3 * 40  # drop_last: 40 carved training images, batches of 4
    assert abs(labels.float().mean().item() - 0.5) < 0.15  # 4 of 40 are the minority


def test_balanced_weights_equal_scikit_learn_and_the_formula() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = class_weights(LossConfig(class_weights="balanced"), lambda: labels, 3)
    assert weights is not None
    by_hand = [10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)]
    assert weights.tolist() == pytest.approx(by_hand)
    sk = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert weights.tolist() == pytest.approx(sk.tolist())
    assert class_weights(LossConfig(), lambda: labels, 3) is None


def test_weighted_loss_equals_its_formula() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    weight = torch.tensor([0.5, 1.5, 3.0])
    loss = build_train_loss(LossConfig(class_weights=[0.5, 1.5, 3.0]), False, weight)
    logp = torch.log_softmax(logits, 1)
    w = weight[labels]
    by_hand = -(w * logp[torch.arange(8), labels]).sum() / w.sum()
    assert loss(logits, labels).item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert loss(logits, labels).item() != pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-3
    )


def test_weighted_loss_with_label_smoothing_and_mixed_targets() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    weight = torch.tensor([0.5, 1.5, 3.0])
    cfg = LossConfig(class_weights="balanced", label_smoothing=0.1)
    smoothed = build_train_loss(cfg, False, weight)(logits, labels)
    expect = torch.nn.functional.cross_entropy(logits, labels, weight=weight, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(expect.item())
    # Mixed (soft) targets: -sum_c w_c t_c log p_c averaged over the batch.
    soft = torch.softmax(torch.randn(8, 3), 1)
    mixed = build_train_loss(cfg, True, weight)(logits, soft)
    by_hand = -(soft * weight * torch.log_softmax(logits, 1)).sum(1).mean()
    assert mixed.item() == pytest.approx(by_hand.item(), rel=1e-6)
    # And with timm's Mixup producing the targets, it trains (finite, differentiable).
    from rsearch.spec.recipe import AugmentConfig

    mixup = build_mixup(AugmentConfig(mixup=0.2), cfg, 3)
    assert mixup is not None
    images, targets = mixup(torch.randn(8, 3, 8, 8), labels)
    assert torch.isfinite(build_train_loss(cfg, True, weight)(logits, targets))


def test_mismatched_weight_list_is_a_clear_error() -> None:
    with pytest.raises(TrainInputError, match="lists 2 weights but the dataset has 3 classes"):
        class_weights(LossConfig(class_weights=[1.0, 2.0]), lambda: np.array([0, 1, 2]), 3)


def test_balanced_weights_refuse_a_missing_class() -> None:
    with pytest.raises(TrainInputError, match=r"classes \[1\] have no images"):
        class_weights(LossConfig(class_weights="balanced"), lambda: np.array([0, 2, 2]), 3)


def test_mismatched_weight_list_refused_at_train_start(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="3 weights but the dataset has 4 classes"):
        fit(make_recipe(loss={"class_weights": [1.0, 2.0, 3.0]}))


# --- stratified validation carve --------------------------------------------------------------


def test_carve_keeps_proportions_and_is_fixed() -> None:
    labels = np.array([0] * 500 + [1] * 100 + [2] * 50)
    train, val = stratified_carve(labels, 0.2, seed=0)
    assert np.bincount(labels[val]).tolist() == [100, 20, 10]
    assert np.bincount(labels[train]).tolist() == [400, 80, 40]
    assert not set(train) & set(val) and len(train) + len(val) == len(labels)
    again = stratified_carve(labels, 0.2, seed=0)
    assert [a.tolist() for a in again] == [train.tolist(), val.tolist()]
    other = stratified_carve(labels, 0.2, seed=1)
    assert other[1].tolist() != val.tolist()


def test_carve_refuses_a_single_image_class() -> None:
    with pytest.raises(TrainInputError, match=r"classes \[1\] of train/ have one"):
        stratified_carve(np.array([0, 0, 0, 1]), 0.5, seed=0)


def _write_digits_folder(root: Path, per_class: dict[int, int], val: bool = False) -> Path:
    """Digits as PNG class folders (train/ only unless val), per_class[d] images of digit d."""
    digits = load_digits()
    for digit, count in per_class.items():
        images = digits.images[digits.target == digit]
        for split, part in [("train", images[:count])] + ([("val", images[-5:])] if val else []):
            folder = root / split / f"d{digit}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(part):
                pixels = (image * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels).convert("RGB").save(folder / f"{i}.png")
    return root


def test_val_fraction_carves_the_folder_the_same_for_two_trials(tmp_path: Path) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 40, 1: 10})
    cfg = DataConfig(dataset="image_folder", path=str(root), val_fraction=0.2)
    a, b = load_source(cfg, 16, seed=0), load_source(cfg, 16, seed=99)  # two trials' seeds
    assert a.val.files == b.val.files  # type: ignore[union-attr]
    assert np.bincount(a.val.labels).tolist() == [8, 2]
    assert np.bincount(a.train.labels).tolist() == [32, 8]
    assert not set(a.train.files) & set(a.val.files)  # type: ignore[union-attr]
    counts = count_images(cfg)
    assert (counts.train, counts.val) == (40, 10)
    moved = DataConfig(dataset="image_folder", path=str(root), val_fraction=0.2, split_seed=1)
    assert load_source(moved, 16, seed=0).val.files != a.val.files  # type: ignore[union-attr]


def test_val_fraction_with_a_val_folder_is_refused(tmp_path: Path) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 10, 1: 10}, val=True)
    cfg = DataConfig(dataset="image_folder", path=str(root), val_fraction=0.2)
    with pytest.raises(TrainInputError, match="has a val/ folder"):
        load_source(cfg, 16, seed=0)


def test_no_val_folder_names_val_fraction(tmp_path: Path) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 10, 1: 10})
    with pytest.raises(TrainInputError, match="set data.val_fraction"):
        load_source(DataConfig(dataset="image_folder", path=str(root)), 16, seed=0)


# --- a short training on an imbalanced digits folder --------------------------------------------


@pytest.mark.parametrize(
    "choice",
    [
        {"data": {"sampler": "balanced"}},
        {"loss": {"class_weights": "balanced"}},
        {"loss": {"class_weights": [1.0, 4.0]}, "augment": {"mixup": 0.2}},
    ],
    ids=["sampler", "weights", "listed-weights-mixup"],
)
def test_short_training_on_imbalanced_digits(
    make_recipe: RecipeFactory, tmp_path: Path, choice: dict[str, Any]
) -> None:
    root = _write_digits_folder(tmp_path / "f", {0: 72, 1: 8})
    data = {"dataset": "image_folder", "path": str(root), "val_fraction": 0.25, "batch_size": 8}
    recipe = make_recipe(
        data={**data, **choice.get("data", {})},
        loss=choice.get("loss", {}),
        augment={"strength": 0.3, **choice.get("augment", {})},
    )
    final = fit(recipe)
    assert final["epoch"] == 1 and np.isfinite(final["train_loss"])
    assert 0.0 <= final["val_top1"] <= 100.0


def test_balanced_sampler_resumes_exactly_in_fit(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    recipe = make_recipe(data={"sampler": "balanced"}, loss={"class_weights": "balanced"}, epochs=3)
    fit(recipe, checkpoint_dir=tmp_path / "a")

    def crash(metrics: dict[str, float], checkpoint: str | None) -> None:
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt("simulated crash after a checkpoint")

    with pytest.raises(KeyboardInterrupt):
        fit(recipe, crash, tmp_path / "b")
    fit(recipe, checkpoint_dir=tmp_path / "b")
    a = load_file(tmp_path / "a" / CHECKPOINT_NAME)
    b = load_file(tmp_path / "b" / CHECKPOINT_NAME)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
