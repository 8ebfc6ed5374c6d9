"""count_images: the image counts load_source would give, without decoding an image."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rsearch.spec.data_section import DataConfig
from rsearch.train import TrainInputError
from rsearch.train.image_counts import ImageCounts, count_images
from rsearch.train.sources import load_source
from rsearch.train.splits import stratified_subset

STAGES = [{"epochs": 1, "image_size": 16, "fraction": 0.25}, {"epochs": 1, "fraction": 0.6}]


def _from_data(cfg: DataConfig, seed: int) -> ImageCounts:
    """The same counts, from the images load_source reads."""
    source = load_source(cfg, cfg.image_size, seed)
    labels = source.train.labels
    labels = labels.numpy() if hasattr(labels, "numpy") else labels
    stages = tuple(len(stratified_subset(labels, s.fraction or 1.0)) for s in cfg.progressive)
    return ImageCounts(len(source.train), len(source.val), stages)


@pytest.mark.parametrize("fraction", [1.0, 0.3])
def test_digits_counts_match_the_split(fraction: float) -> None:
    cfg = DataConfig(dataset="digits", fraction=fraction, progressive=STAGES)
    assert count_images(cfg) == _from_data(cfg, seed=0)


@pytest.mark.parametrize(
    ("fraction", "seed", "extra"),
    [(1.0, 0, {}), (0.5, 3, {}), (0.2, 7, {"image_size": 12, "num_classes": 5})],
)
def test_synthetic_counts_match_the_drawn_labels(
    fraction: float, seed: int, extra: dict[str, Any]
) -> None:
    cfg = DataConfig(
        dataset="synthetic", synthetic_size=203, fraction=fraction, progressive=STAGES, **extra
    )
    assert count_images(cfg, seed) == _from_data(cfg, seed)


def test_image_folder_counts_list_the_files(image_folder: Path) -> None:
    # Uneven classes, so the stratified rounding matters.
    for i in range(5):
        shutil.copy(next((image_folder / "train" / "dog").glob("*.png")), image_folder / f"{i}.png")
        shutil.move(image_folder / f"{i}.png", image_folder / "train" / "dog" / f"extra{i}.png")
    cfg = DataConfig(
        dataset="image_folder", path=str(image_folder), fraction=0.7, progressive=STAGES
    )
    counts = count_images(cfg)
    assert counts == _from_data(cfg, seed=0)
    assert counts.train < 17 and counts.val == 12


def test_cifar_counts_are_the_official_sizes(tmp_path: Path) -> None:
    cfg = DataConfig(dataset="cifar100", path=str(tmp_path), fraction=0.1)
    assert count_images(cfg) == ImageCounts(5000, 10_000, ())
    assert count_images(cfg.model_copy(update={"dataset": "cifar10"})).train == 5000


def test_missing_image_folder_is_a_train_input_error(tmp_path: Path) -> None:
    cfg = DataConfig(dataset="image_folder", path=str(tmp_path / "nowhere"))
    with pytest.raises(TrainInputError, match="does not exist"):
        count_images(cfg)
