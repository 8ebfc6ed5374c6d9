"""Image counts of a recipe's data section, no image decoded (the planner reads no images)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rsearch.spec.data_section import DataConfig
from rsearch.train.cifar import CIFAR
from rsearch.train.sources import DIGITS_VAL_SIZE, require_dir
from rsearch.train.splits import SPLIT_SEED


@dataclass(frozen=True)
class ImageCounts:
    """How many images a recipe's data section trains and evaluates on, no image decoded."""

    train: int
    """Training images after data.fraction (the subset every full-data epoch sees)."""
    val: int
    """Validation images (every one is evaluated each epoch)."""
    stages: tuple[int, ...]
    """Training images of each data.progressive stage (its share of the `train` subset)."""


def count_images(cfg: DataConfig, seed: int = 0) -> ImageCounts:
    """Count a dataset's training and validation images as load_source would split them.

    The training subsets follow stratified_subset's rule (every class keeps
    max(1, round(count * fraction)) images), so class sizes are needed only when a fraction
    is below 1; then the digits split is redone on its labels, the synthetic labels are drawn
    again from the seeded generator, and image folders are listed (never decoded).

    Args:
        cfg: the recipe's data section.
        seed: the recipe seed (only the synthetic labels depend on it).
    """
    shares = [stage.fraction or 1.0 for stage in cfg.progressive]
    if cfg.dataset == "shards":  # every image is used (the spec refuses subsets of shards)
        from rsearch.train.shards import read_index  # deferred, as in count_classes

        index = read_index(str(cfg.path))
        train = index.count("train")
        return ImageCounts(train, index.count("val"), (train,) * len(shares))
    if cfg.dataset == "synthetic" and cfg.fraction >= 1.0 and all(s >= 1.0 for s in shares):
        # Every image is used: the (random) class sizes do not matter.
        return ImageCounts(
            cfg.synthetic_size, _synthetic_val(cfg), (cfg.synthetic_size,) * len(shares)
        )
    per_class, val = _class_sizes(cfg, seed)
    subset = _stratified_sizes(per_class, cfg.fraction)
    stages = tuple(sum(_stratified_sizes(subset, share)) for share in shares)
    return ImageCounts(sum(subset), val, stages)


def _stratified_sizes(per_class: Sequence[int], fraction: float) -> list[int]:
    # stratified_subset's count per class, without the labels themselves.
    if fraction >= 1.0:
        return list(per_class)
    return [max(1, round(n * fraction)) for n in per_class if n > 0]


def _synthetic_val(cfg: DataConfig) -> int:
    return max(1, cfg.synthetic_size // 5)


def _class_sizes(cfg: DataConfig, seed: int) -> tuple[list[int], int]:
    """Training images per class (before data.fraction) and validation images."""
    if cfg.dataset == "digits":
        return list(_digits_train_sizes()), DIGITS_VAL_SIZE
    if cfg.dataset == "synthetic":
        labels = _synthetic_train_labels(cfg, cfg.image_size, seed)
        return np.bincount(labels, minlength=cfg.num_classes).tolist(), _synthetic_val(cfg)
    if cfg.dataset in CIFAR:
        # The python batches hold 5000 (CIFAR-10) or 500 (CIFAR-100) images of each class.
        classes = CIFAR[cfg.dataset][4]
        return [50_000 // classes] * classes, 10_000
    from rsearch.train.carve import folder_source

    source = folder_source(cfg, require_dir(cfg.path))
    train_labels = source.train.labels
    assert isinstance(train_labels, list)
    return np.bincount(train_labels).tolist(), len(source.val)


@functools.cache
def _digits_train_sizes() -> tuple[int, ...]:
    from sklearn.datasets import load_digits  # deferred: sklearn import is slow
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train_idx, _ = train_test_split(
        np.arange(len(target)),
        test_size=DIGITS_VAL_SIZE,
        stratify=target,
        random_state=SPLIT_SEED,
    )
    return tuple(np.bincount(target[train_idx], minlength=10).tolist())


SYNTHETIC_CHUNK = 2**24
"""Random bytes drawn at a time when replaying the synthetic images (bounded memory)."""


def _synthetic_train_labels(cfg: DataConfig, size: int, seed: int) -> np.ndarray:
    # _synthetic draws the training images, then their labels, from one generator; the CPU
    # generator draws one value per element in order, so the images can be skipped in chunks.
    gen = torch.Generator().manual_seed(seed)
    remaining = cfg.synthetic_size * 3 * size * size
    while remaining:
        chunk = min(remaining, SYNTHETIC_CHUNK)
        torch.randint(0, 256, (chunk,), dtype=torch.uint8, generator=gen)
        remaining -= chunk
    labels = torch.randint(0, cfg.num_classes, (cfg.synthetic_size,), generator=gen)
    return labels.numpy()
