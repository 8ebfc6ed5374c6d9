"""Class imbalance on the training side: class-weighted losses and a class-balanced order.

`loss.class_weights` weights each class's cross-entropy terms (torch's `weight=`, which also
weights the probability targets of label smoothing and of mixup/CutMix). `data.sampler:
balanced` replaces the uniform epoch order with an epoch's worth of draws with replacement,
each image drawn with probability proportional to 1 / (its class's count), so every class is
drawn equally often in expectation (torch's WeightedRandomSampler in one process; the same
draw, seeded by the recipe seed and the epoch and dealt across ranks, under DDP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import DistributedSampler, WeightedRandomSampler

from rsearch.spec.recipe import LossConfig
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError


def class_weights(
    cfg: LossConfig, read_labels: Callable[[], np.ndarray], num_classes: int
) -> torch.Tensor | None:
    """The per-class loss weights a recipe asks for, or None for an unweighted loss.

    Args:
        cfg: the recipe's loss section.
        read_labels: the class indices of the training split (after data.fraction); called
            only for balanced weights (a streamed shard set lists no labels).
        num_classes: classes of the dataset.

    Raises:
        TrainInputError: an explicit list whose length is not the class count, or balanced
            weights for a training split missing a class (its weight would be infinite).
    """
    if cfg.class_weights == "none":
        return None
    if cfg.class_weights == "balanced":
        labels = read_labels()
        present = np.unique(labels)
        if len(present) != num_classes:
            missing = sorted(set(range(num_classes)) - set(present.tolist()))
            raise TrainInputError(
                f"loss.class_weights: balanced needs every class in the training split; "
                f"classes {missing} have no images"
            )
        weights = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
        return torch.as_tensor(weights, dtype=torch.float32)
    if len(cfg.class_weights) != num_classes:
        raise TrainInputError(
            f"loss.class_weights lists {len(cfg.class_weights)} weights but the dataset has "
            f"{num_classes} classes; give one weight per class (in class-folder order)"
        )
    return torch.tensor(cfg.class_weights, dtype=torch.float32)


def weighted_ce(cfg: LossConfig, weight: torch.Tensor) -> nn.Module:
    """Cross-entropy weighted per class, for class indices and probability targets alike.

    With class indices the mean divides by the summed weights of the batch's labels; with
    probability targets (mixup/CutMix, whose Mixup has already smoothed them) torch divides by
    the batch size. Label smoothing applies to class indices only: mixed targets carry it.
    """
    return _WeightedCE(weight, cfg.label_smoothing)


class _WeightedCE(nn.Module):
    # A module holding the weight as a buffer, so it follows the model's device.
    def __init__(self, weight: torch.Tensor, label_smoothing: float):
        super().__init__()
        self.register_buffer("class_weight", weight)
        self.class_weight: torch.Tensor
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.class_weight.to(logits.dtype)
        if target.dim() == logits.dim():  # probability targets (already smoothed by Mixup)
            return nn.functional.cross_entropy(logits, target.to(logits.dtype), weight=weight)
        return nn.functional.cross_entropy(
            logits, target, weight=weight, label_smoothing=self.label_smoothing
        )


def sample_weights(labels: np.ndarray) -> torch.Tensor:
    """Each image's draw weight, 1 / (its class's count): every class weighs 1 in all."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return torch.as_tensor(1.0 / counts[inverse], dtype=torch.float64)


class DistributedBalancedSampler(DistributedSampler[int]):
    """A rank's share of a class-balanced draw with replacement, the same on every rank.

    Every rank draws the same ceil(n / world) x world indices from a generator seeded with
    seed + epoch (DistributedSampler's convention) and keeps every world-th one from its rank,
    so the ranks' shares never overlap as positions of one draw and together make one epoch.
    """

    def __init__(self, labels: np.ndarray, ctx: DistContext, seed: int):
        super().__init__(
            range(len(labels)),  # type: ignore[arg-type]  # only len() is asked of it
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=seed,
        )
        self.weights = sample_weights(labels)

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        draw = torch.multinomial(self.weights, self.total_size, replacement=True, generator=gen)
        return iter(draw[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


def balanced_sampler(
    labels: np.ndarray, seed: int, ctx: DistContext, order: torch.Generator | None
) -> WeightedRandomSampler | DistributedBalancedSampler:
    """A rank's class-balanced order over positions 0..len(labels)-1.

    Args:
        labels: class indices of the images ordered (a data.progressive share's, if any).
        seed: the recipe seed (orders of DDP ranks).
        ctx: this process's rank and world size.
        order: the single process's order generator (checkpointed, so a resumed run draws
            what an uninterrupted one would); drawn from only when an epoch iterates.
    """
    if not ctx.enabled:
        return WeightedRandomSampler(
            sample_weights(labels),  # type: ignore[arg-type]  # torch takes a 1-D tensor
            num_samples=len(labels),
            replacement=True,
            generator=order,
        )
    return DistributedBalancedSampler(labels, ctx, seed)
