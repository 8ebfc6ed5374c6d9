"""Training orders: which image indices a rank visits in an epoch, and in what order.

A uniform order is torch's seeded RandomSampler on one process, DistributedSampler across
ranks, or timm's RepeatAugSampler under augment.repeated_aug; a share of the training set
(data.progressive) maps its positions back to the set's indices (SubsetOrder). The balanced
order lives with class imbalance (rsearch.train.balance).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import Dataset, DistributedSampler, RandomSampler

from rsearch.spec.recipe import Recipe
from rsearch.train.distributed import DistContext


class IndexOrder(Protocol):
    """The image indices one rank visits in an epoch (a torch sampler or a list)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


class SubsetOrder:
    """A sampler over positions 0..n-1 of a subset, yielding the subset's image indices."""

    def __init__(self, positions: IndexOrder, indices: np.ndarray):
        self.positions = positions
        self.indices = indices.tolist()

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self) -> Iterator[int]:
        return (self.indices[i] for i in self.positions)

    def set_epoch(self, epoch: int) -> None:
        set_sampler_epoch(self.positions, epoch)


def set_sampler_epoch(sampler: object, epoch: int) -> None:
    """Select an epoch's order on the samplers that derive it from the epoch (distributed)."""
    if isinstance(sampler, SubsetOrder | DistributedSampler | RepeatAugSampler):
        sampler.set_epoch(epoch)


class _Sized(Dataset[int]):
    """A stand-in dataset of a given length: torch's samplers only ask for len()."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class _SeededRepeatAugSampler(RepeatAugSampler):
    """timm's RepeatAugSampler, whose order depends on the epoch only, offset by the seed."""

    def __init__(self, size: int, ctx: DistContext, repeats: int, seed: int):
        super().__init__(
            range(size), num_replicas=ctx.world_size, rank=ctx.rank, num_repeats=repeats
        )
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        # Distinct seeds must give distinct orders, as with DistributedSampler(seed=...).
        super().set_epoch(self.seed * 1_000_003 + epoch)


def train_sampler(
    size: int, recipe: Recipe, ctx: DistContext, order: torch.Generator | None
) -> IndexOrder:
    """This rank's uniform order over a training set of size images: seeded random,
    distributed, or timm's repeated augmentation (augment.repeated_aug)."""
    repeats = recipe.augment.repeated_aug
    if not ctx.enabled:
        # Built without drawing: the order generator advances only when an epoch iterates.
        return RandomSampler(range(size), generator=order)
    if repeats > 1:
        return _SeededRepeatAugSampler(size, ctx, repeats, recipe.seed)
    return DistributedSampler(
        _Sized(size), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=recipe.seed
    )
