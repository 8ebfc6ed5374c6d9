"""Per-epoch sums, held by name: each rank's totals, then all ranks' after an all-reduce.

Metrics are ratios of exact sums (hits over images), not averages of batch averages, so
every worker adds up its share and the sums are reduced before any division.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

import torch

from rsearch.train.distributed import DistContext, all_reduce

S = TypeVar("S", bound="Sums")


@dataclass(frozen=True)
class Sums:
    """Named float sums; the field order is the layout of the tensor that is all-reduced."""

    def to_tensor(self) -> torch.Tensor:
        """The sums as a float64 tensor, in field order."""
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls: type[S], values: torch.Tensor) -> S:
        """Sums read back from a tensor made by to_tensor."""
        names = [f.name for f in fields(cls)]
        return cls(**dict(zip(names, values.tolist(), strict=True)))

    def all_reduce(self: S, ctx: DistContext) -> S:
        """These sums added over every rank (unchanged in a single process)."""
        return self.from_tensor(all_reduce(self.to_tensor(), ctx, "sum"))


@dataclass(frozen=True)
class TrainSums(Sums):
    """What a training epoch adds up."""

    loss: float
    """Training loss times batch size, summed over batches."""
    images: float
    """Training images seen."""

    @property
    def mean_loss(self) -> float:
        """Training loss per image."""
        return self.loss / self.images


@dataclass(frozen=True)
class EvalSums(Sums):
    """What an evaluation adds up over validation images."""

    loss: float
    """Cross-entropy summed over images."""
    top1: float
    """Images whose top class is right."""
    top5: float
    """Images whose class is among the top five (all of them under five classes)."""
    images: float
    """Validation images evaluated."""

    @property
    def mean_loss(self) -> float:
        """Cross-entropy per image."""
        return self.loss / self.images

    @property
    def top1_pct(self) -> float:
        """Top-1 accuracy in percent."""
        return 100.0 * self.top1 / self.images

    @property
    def top5_pct(self) -> float:
        """Top-5 accuracy in percent."""
        return 100.0 * self.top5 / self.images
