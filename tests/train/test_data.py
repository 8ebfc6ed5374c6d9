"""Datasets and loaders: digits split, fractions, synthetic, image folders, CIFAR, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rsearch.spec import Recipe
from rsearch.spec.data_section import DataConfig
from rsearch.train import TrainInputError
from rsearch.train.bundles import build_data
from rsearch.train.data import DataBundle, MemoryBatches, StreamBatches, per_rank_batch
from rsearch.train.distributed import DistContext
from rsearch.train.sources import load_source
from rsearch.train.splits import stratified_subset
from tests.train.train_helpers import RecipeFactory, write_cifar, write_image_folder

CPU = torch.device("cpu")
ONE = DistContext()


def _bundle(recipe: Recipe, ctx: DistContext = ONE) -> DataBundle:
    return build_data(recipe, ctx, CPU, "bilinear", (0.5, 0.5, 0.5))


def test_digits_split_is_fixed_and_stratified() -> None:
    a = load_source(DataConfig(dataset="digits", image_size=32), 32, seed=0)
    b = load_source(DataConfig(dataset="digits", image_size=32), 32, seed=123)
    assert (len(a.train), len(a.val)) == (1437, 360)
    assert torch.equal(a.val.labels, b.val.labels)  # independent of the recipe seed
    assert torch.equal(a.val.images, b.val.images)
    counts = torch.bincount(a.val.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # 360 / 10, stratified
    assert a.train.images.shape[1:] == (3, 32, 32)
    assert a.train.images.dtype == torch.uint8
    assert int(a.train.images.max()) == 255 and int(a.train.images.min()) == 0


def test_fraction_is_stratified_and_fixed() -> None:
    labels = np.repeat(np.arange(4), [100, 50, 20, 2])
    subset = stratified_subset(labels, 0.1)
    assert np.array_equal(subset, stratified_subset(labels, 0.1))
    assert np.bincount(labels[subset]).tolist() == [10, 5, 2, 1]  # every class kept
    assert len(stratified_subset(labels, 1.0)) == len(labels)


def test_digits_fraction_reaches_the_loader(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(data={"dataset": "digits", "fraction": 0.2, "batch_size": 32})
    data = _bundle(recipe)
    assert isinstance(data.train, MemoryBatches)
    assert len(data.train.labels) == pytest.approx(1437 * 0.2, abs=6)
    assert len(data.train) == len(data.train.labels) // 32  # full batches only
    assert data.num_classes == 10


def test_synthetic_sizes(make_recipe: RecipeFactory) -> None:
    data = _bundle(make_recipe(data={"synthetic_size": 80, "num_classes": 7}))
    images, labels = next(iter(data.train))
    assert images.shape == (16, 3, 16, 16) and images.dtype == torch.uint8
    assert int(labels.max()) < 7
    assert sum(len(lab) for _, lab in data.val) == 16  # a fifth of the training size


def test_single_process_order_is_seeded_and_changes_per_epoch(make_recipe: RecipeFactory) -> None:
    first = [lab.tolist() for _, lab in _bundle(make_recipe()).train]
    data = _bundle(make_recipe())
    again = [lab.tolist() for _, lab in data.train]
    next_epoch = [lab.tolist() for _, lab in data.train]
    assert first == again
    assert next_epoch != again


def test_image_folder_in_memory(make_recipe: RecipeFactory, image_folder: Path) -> None:
    recipe = make_recipe(
        data={"dataset": "image_folder", "path": str(image_folder), "batch_size": 4}
    )
    data = _bundle(recipe)
    assert data.in_memory and data.num_classes == 3
    images, labels = next(iter(data.train))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    val_labels = torch.cat([lab for _, lab in data.val])
    assert sorted(val_labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    # class 1 ("dog") was written with a strong green channel
    assert isinstance(data.val, MemoryBatches)
    dog = data.val.images[data.val.labels == 1].float()
    assert dog[:, 1].mean() > dog[:, 0].mean() + 100


def test_image_folder_streams_with_workers(make_recipe: RecipeFactory, image_folder: Path) -> None:
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),
            "batch_size": 4,
            "num_workers": 1,
            "eval_image_size": 20,
        }
    )
    data = _bundle(recipe)
    assert isinstance(data.train, StreamBatches) and not data.in_memory
    images, labels = next(iter(data.train))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    val = list(data.val)
    assert val[0][0].shape[1:] == (3, 20, 20)
    assert sum(len(lab) for _, lab in val) == 12


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_batches(make_recipe: RecipeFactory, tmp_path: Path, kind: str) -> None:
    root = write_cifar(tmp_path / kind, kind)
    source = load_source(DataConfig(dataset=kind, path=str(root)), 32, seed=0)
    train_files = 5 if kind == "cifar10" else 1
    assert len(source.train) == 10 * train_files and len(source.val) == 10
    assert source.train.images.shape[1:] == (3, 32, 32)
    assert source.num_classes == (10 if kind == "cifar10" else 100)
    data = _bundle(make_recipe(data={"dataset": kind, "path": str(root), "batch_size": 5}))
    assert next(iter(data.train))[0].shape == (5, 3, 32, 32)


def test_cifar_pixels_keep_their_channel_order(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "c", "cifar100", per_batch=2)
    import pickle

    with (root / "test").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    source = load_source(DataConfig(dataset="cifar100", path=str(root)), 32, seed=0)
    # rows are 1024 red, 1024 green, 1024 blue values, each row-major 32 x 32
    assert source.val.images[1, 2, 0, 5] == raw[1][2048 + 5]


def test_cifar_inside_the_archive_folder(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", "cifar10")
    source = load_source(DataConfig(dataset="cifar10", path=str(tmp_path)), 32, seed=0)
    assert len(source.val) == 10


def test_missing_cifar_batch(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "c", "cifar10")
    (root / "data_batch_3").unlink()
    with pytest.raises(TrainInputError, match="data_batch_3"):
        load_source(DataConfig(dataset="cifar10", path=str(root)), 32, seed=0)


def test_missing_dataset_path(tmp_path: Path) -> None:
    with pytest.raises(TrainInputError, match="does not exist"):
        load_source(DataConfig(dataset="image_folder", path=str(tmp_path / "nope")), 32, seed=0)


def test_class_folders_differ(tmp_path: Path) -> None:
    root = write_image_folder(
        tmp_path / "f", {"train": ["cat", "dog", "fox"], "val": ["cat", "dog", "owl"]}
    )
    with pytest.raises(TrainInputError, match=r"only in train \['fox'\], only in val \['owl'\]"):
        load_source(DataConfig(dataset="image_folder", path=str(root)), 16, seed=0)


def test_missing_val_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", {"train": ["cat", "dog"]})
    with pytest.raises(TrainInputError, match="no val/ folder"):
        load_source(DataConfig(dataset="image_folder", path=str(root)), 16, seed=0)


def test_unreadable_image_in_memory(make_recipe: RecipeFactory, image_folder: Path) -> None:
    bad = image_folder / "train" / "dog" / "broken.png"
    bad.write_bytes(b"not a png at all")
    recipe = make_recipe(data={"dataset": "image_folder", "path": str(image_folder)})
    with pytest.raises(TrainInputError, match=r"cannot read image .*broken\.png"):
        _bundle(recipe)


def test_unreadable_image_streamed(make_recipe: RecipeFactory, image_folder: Path) -> None:
    for i in range(4):  # every dog, so the first batch surely meets one
        (image_folder / "train" / "dog" / f"{i}.png").write_bytes(b"garbage")
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),
            "num_workers": 1,
            "batch_size": 12,
        }
    )
    data = _bundle(recipe)
    with pytest.raises(TrainInputError, match=r"cannot read image .*dog"):
        next(iter(data.train))


def test_batch_must_split_across_workers() -> None:
    with pytest.raises(TrainInputError, match="does not split evenly across 3 workers"):
        per_rank_batch(DataConfig(batch_size=64), DistContext(rank=0, world_size=3))
    assert per_rank_batch(DataConfig(batch_size=64), DistContext(rank=1, world_size=2)) == 32


def test_training_set_smaller_than_batch(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(data={"synthetic_size": 10, "batch_size": 16})
    with pytest.raises(TrainInputError, match="fewer than its batch of 16"):
        _bundle(recipe)


def test_distributed_shards_cover_validation_once(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(data={"synthetic_size": 110, "batch_size": 8})  # 22 val images
    seen: list[int] = []
    train_orders = []
    for rank in range(2):
        data = _bundle(recipe, DistContext(rank=rank, world_size=2))
        assert isinstance(data.val, MemoryBatches)
        seen += list(data.val.sampler)
        data.train.set_epoch(0)
        train_orders.append(set(data.train.sampler))  # type: ignore[attr-defined]
    assert sorted(seen) == list(range(22))  # no padding, no overlap: exact reduced metrics
    assert not train_orders[0] & train_orders[1]
