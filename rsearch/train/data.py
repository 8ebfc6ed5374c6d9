"""Datasets as batches on the device.

Small datasets (digits, synthetic, CIFAR, image folders up to MAX_IN_MEMORY_IMAGES) are held in
memory as uint8 NCHW tensors on the training device and batched by indexing, so loading costs
nothing and augmentation runs batch-wise on the device (augment.TrainTransform). Large image
folders, or any image folder when data.num_workers > 0, stream through a DataLoader whose worker
processes decode and crop; their batches are normalised on the device the same way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from rsearch.spec.recipe import DataConfig, Recipe
from rsearch.train.augment import pil_eval_transform, pil_train_transform
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.sources import (
    ImageArray,
    ImageFiles,
    Split,
    decode_all,
    load_source,
    open_rgb,
)

MAX_IN_MEMORY_IMAGES = 20_000
"""Image folders with more training images than this stream through loader workers."""

MAX_IN_MEMORY_BYTES = 2 * 2**30
"""...as do image folders whose decoded training images would take more memory than this."""


class IndexOrder(Protocol):
    """The image indices one rank visits in an epoch (a torch sampler or a list)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


class Batches(Protocol):
    """An epoch's worth of (uint8 images, int64 labels) batches on the device."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's data order (distributed samplers derive it from the epoch)."""


@dataclass
class DataBundle:
    """Everything the loop needs to know about its data."""

    train: Batches
    val: Batches
    num_classes: int
    in_memory: bool
    """Batches come at their stored size and are cropped/flipped on the device."""
    order: torch.Generator | None
    """The generator of a single process's data order (saved in checkpoints), else None."""


class MemoryBatches:
    """Batches gathered by index from a split held on the device."""

    def __init__(
        self,
        split: ImageArray,
        batch_size: int,
        sampler: IndexOrder,
        device: torch.device,
        drop_last: bool,
    ):
        self.images = split.images.to(device)
        self.labels = split.labels.to(device)
        self.batch_size = batch_size
        self.sampler = sampler
        self.drop_last = drop_last

    def __len__(self) -> int:
        count = len(self.sampler)
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, DistributedSampler | RepeatAugSampler):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.long, device=self.images.device)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


class FileDataset(Dataset[tuple[torch.Tensor, int]]):
    """Image files decoded and transformed one at a time (in loader workers)."""

    def __init__(self, split: ImageFiles, transform: Callable[[Image.Image], torch.Tensor]):
        self.files: list[Path] = split.files
        self.labels = split.labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(open_rgb(self.files[index])), self.labels[index]


class StreamBatches:
    """A DataLoader's batches moved to the device."""

    def __init__(self, loader: DataLoader, device: torch.device):
        self.loader = loader
        self.device = device

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        sampler = self.loader.sampler
        if isinstance(sampler, DistributedSampler | RepeatAugSampler):
            sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )


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


def per_rank_batch(cfg: DataConfig, ctx: DistContext) -> int:
    """This rank's share of the global batch.

    Raises:
        TrainInputError: the batch does not split evenly across the ranks.
    """
    if cfg.batch_size % ctx.world_size:
        raise TrainInputError(
            f"data.batch_size {cfg.batch_size} does not split evenly across "
            f"{ctx.world_size} workers; use a multiple of {ctx.world_size}"
        )
    return cfg.batch_size // ctx.world_size


def store_size(cfg: DataConfig) -> int:
    """Side at which in-memory image folders are decoded: enough for train and eval crops."""
    eval_size = cfg.eval_image_size or cfg.image_size
    return math.ceil(max(cfg.image_size, eval_size / cfg.crop_pct))


def streams(cfg: DataConfig, train: Split) -> bool:
    """True when a split should stream through loader workers rather than sit in memory."""
    if isinstance(train, ImageArray):
        return False
    side = store_size(cfg)
    return (
        cfg.num_workers > 0
        or len(train) > MAX_IN_MEMORY_IMAGES
        or len(train) * 3 * side * side > MAX_IN_MEMORY_BYTES
    )


def _train_sampler(
    size: int, recipe: Recipe, ctx: DistContext, order: torch.Generator | None
) -> IndexOrder:
    repeats = recipe.augment.repeated_aug
    if not ctx.enabled:
        if repeats > 1:
            warnings.warn(
                "augment.repeated_aug applies to multi-worker (DDP) training; one process "
                "trains without it",
                stacklevel=3,
            )
        return RandomSampler(range(size), generator=order)
    if repeats > 1:
        return _SeededRepeatAugSampler(size, ctx, repeats, recipe.seed)
    return DistributedSampler(
        _Sized(size), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=recipe.seed
    )


def _val_shard(size: int, ctx: DistContext) -> list[int]:
    # Every image once over all ranks (no padding), so reduced counts are exact.
    return list(range(ctx.rank, size, ctx.world_size))


def _check_sizes(train_batches: int, train_size: int, batch: int) -> None:
    if train_batches == 0:
        raise TrainInputError(
            f"the training set gives each worker {train_size} images, fewer than its batch of "
            f"{batch}; lower data.batch_size or raise data.fraction"
        )


def build_data(
    recipe: Recipe,
    ctx: DistContext,
    device: torch.device,
    interpolation: str,
    mean: tuple[float, ...],
    threads: int | None = None,
) -> DataBundle:
    """Read the recipe's dataset and batch it for this rank.

    Args:
        recipe: the run's recipe.
        ctx: this process's rank and world size.
        device: the training device (in-memory data is moved there).
        interpolation: the model's preferred resize interpolation (streamed data).
        mean: the model's normalisation mean (fill colour of RandAugment in loader workers).
        threads: CPU threads that decode in-memory datasets (None: see cpu_threads).
    """
    cfg = recipe.data
    batch = per_rank_batch(cfg, ctx)
    source = load_source(cfg, cfg.image_size, recipe.seed)
    order = None if ctx.enabled else torch.Generator().manual_seed(recipe.seed)
    train_sampler = _train_sampler(len(source.train), recipe, ctx, order)
    val_sampler = _val_shard(len(source.val), ctx)
    train: Batches
    val: Batches
    if streams(cfg, source.train):
        assert isinstance(source.train, ImageFiles) and isinstance(source.val, ImageFiles)
        eval_size = cfg.eval_image_size or cfg.image_size
        train_tf = pil_train_transform(recipe.augment, cfg.image_size, interpolation, mean)
        eval_tf = pil_eval_transform(eval_size, cfg.crop_pct, interpolation)
        train = _stream(source.train, cfg, batch, train_sampler, device, train_tf, training=True)
        val = _stream(source.val, cfg, batch, val_sampler, device, eval_tf, training=False)
    else:
        side = store_size(cfg)
        train_images = decode_all(source.train, side, threads)
        val_images = decode_all(source.val, side, threads)
        train = MemoryBatches(train_images, batch, train_sampler, device, True)
        val = MemoryBatches(val_images, batch, val_sampler, device, False)
    _check_sizes(len(train), len(train_sampler), batch)
    return DataBundle(train, val, source.num_classes, isinstance(train, MemoryBatches), order)


def _stream(
    split: ImageFiles,
    cfg: DataConfig,
    batch: int,
    sampler: IndexOrder,
    device: torch.device,
    transform: Callable[[Image.Image], torch.Tensor],
    training: bool,
) -> StreamBatches:
    loader = DataLoader(
        FileDataset(split, transform),
        batch_size=batch,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=training,
        # Fresh workers each epoch draw their seeds from the (checkpointed) torch RNG, so a
        # resumed run augments exactly as an uninterrupted one would.
        persistent_workers=False,
    )
    return StreamBatches(loader, device)
