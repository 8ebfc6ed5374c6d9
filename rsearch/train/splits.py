"""The splits of a dataset: images held in memory or a list of image files, and the
seeded, class-balanced subsets of them (data.fraction, data.progressive's nested shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLIT_SEED = 0
"""Seed of the fixed digits split and of data.fraction subsets, independent of recipe.seed so
that every trial of a search sees the same images."""


@dataclass
class ImageArray:
    """A split held in memory."""

    images: torch.Tensor
    """uint8 images, N x 3 x H x W."""
    labels: torch.Tensor
    """int64 class indices, N."""

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageFiles:
    """A split read from image files."""

    files: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


Split = ImageArray | ImageFiles


@dataclass
class Source:
    """The train and validation splits of one dataset."""

    train: Split
    val: Split
    num_classes: int


def stratified_subset(labels: Sequence[int] | np.ndarray, fraction: float) -> np.ndarray:
    """Indices of a class-balanced fraction of a split (at least one image of every class).

    The choice is seeded with SPLIT_SEED, so every run with the same fraction sees the same
    images.
    """
    labels = np.asarray(labels)
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(SPLIT_SEED)
    keep = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, round(len(members) * fraction))
        keep.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(keep))


def nested_subset(labels: Sequence[int] | np.ndarray, share: float) -> np.ndarray:
    """Indices of a class-balanced share of a split, nested across shares.

    Each class's images are put in one fixed random order (seeded with SPLIT_SEED, never the
    recipe seed, so every trial of a search sees the same images) and a share keeps the first
    round(share x class size) of them, at least one: a smaller share's images are always
    among a larger share's (the images of a 25% data.progressive stage are in its 50% stage).
    """
    labels = np.asarray(labels)
    if share >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(SPLIT_SEED)
    by_class = np.argsort(labels, kind="stable")  # each class's indices, ascending, in a run
    _, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    keep = []
    for start, count in zip(starts, counts, strict=True):
        # Every class draws its order whatever the share, so all shares share the draws.
        members = rng.permutation(by_class[start : start + count])
        keep.append(members[: max(1, round(count * share))])
    return np.sort(np.concatenate(keep))


def take(split: Split, indices: np.ndarray) -> Split:
    """The images of split at indices."""
    if isinstance(split, ImageArray):
        index = torch.from_numpy(indices).long()
        return ImageArray(split.images[index], split.labels[index])
    return ImageFiles([split.files[i] for i in indices], [split.labels[i] for i in indices])
