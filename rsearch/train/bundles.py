"""A run's data, read the way its dataset is stored: the one place that tells them apart.

Datasets listed image by image (digits, synthetic, image folders, CIFAR) are read by
rsearch.train.data, packed shards by rsearch.train.shard_data; both give a DataBundle.
"""

from __future__ import annotations

import torch

from rsearch.spec.recipe import Recipe
from rsearch.train.data import DataBundle, listed_bundle, per_rank_batch
from rsearch.train.distributed import DistContext
from rsearch.train.shard_data import shard_bundle


def build_data(
    recipe: Recipe,
    ctx: DistContext,
    device: torch.device,
    interpolation: str,
    mean: tuple[float, ...],
    threads: int | None = None,
) -> DataBundle:
    """Read the recipe's dataset and batch it for this rank, at the first epoch's fidelity.

    Args:
        recipe: the run's recipe.
        ctx: this process's rank and world size.
        device: the training device (in-memory data is moved there).
        interpolation: the model's preferred resize interpolation (streamed data).
        mean: the model's normalisation mean (fill colour of RandAugment in loader workers).
        threads: CPU threads that decode in-memory datasets (None: see cpu_threads).

    Raises:
        TrainInputError: unreadable data, or a training set (or a data.progressive stage's
            share of it) that gives a worker less than one batch.
    """
    per_rank_batch(recipe.data, ctx)  # refuse a batch that does not split before reading anything
    if recipe.data.dataset == "shards":
        return shard_bundle(recipe, ctx, device, interpolation, mean)
    return listed_bundle(recipe, ctx, device, interpolation, mean, threads)
