"""Datasets as batches on the device.

Small datasets (digits, synthetic, CIFAR, image folders up to MAX_IN_MEMORY_IMAGES) are held in
memory as uint8 NCHW tensors on the training device and batched by indexing, so loading costs
nothing and augmentation runs batch-wise on the device (augment.TrainTransform). Large image
folders, or any image folder when data.num_workers > 0, stream through a DataLoader whose worker
processes decode and crop; their batches are normalised on the device the same way.

Under data.progressive each epoch trains on a nested, stratified share of the training set;
`DataBundle.use` re-makes the batches when an epoch's share (or, for streamed data, its
resolution) differs from the last one's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from rsearch.spec.data_section import DataConfig
from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import eval_sizes, train_sizes
from rsearch.train.augment import pil_eval_transform, pil_train_transform
from rsearch.train.balance import balanced_sampler
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import open_rgb
from rsearch.train.orders import IndexOrder, SubsetOrder, set_sampler_epoch, train_sampler
from rsearch.train.sources import decode_all, load_source
from rsearch.train.splits import ImageArray, ImageFiles, Source, Split, nested_subset
from rsearch.train.stages import EpochFidelity, fidelity_at, stretches

MAX_IN_MEMORY_IMAGES = 20_000
"""Image folders with more training images than this stream through loader workers."""

MAX_IN_MEMORY_BYTES = 2 * 2**30
"""...as do image folders whose decoded training images would take more memory than this."""


class Batches(Protocol):
    """An epoch's worth of (uint8 images, int64 labels) batches on the device."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's data order (distributed samplers derive it from the epoch)."""


class DataBundle:
    """Everything the loop needs to know about its data, batched for the current epoch."""

    def __init__(self, maker: BatchMaker, fidelity: EpochFidelity):
        self.maker = maker
        self.train: Batches = maker.train(fidelity.share, fidelity.train_size)
        self.val: Batches = maker.val(fidelity.eval_size)
        self._made = (self._train_key(fidelity), self._val_key(fidelity))

    @property
    def num_classes(self) -> int:
        """Classes of the dataset."""
        return self.maker.source.num_classes

    @property
    def in_memory(self) -> bool:
        """Batches come at their stored size and are cropped/flipped on the device."""
        return not self.maker.streamed

    @property
    def order(self) -> torch.Generator | None:
        """The generator of a single process's data order (saved in checkpoints), else None."""
        return self.maker.order

    def use(self, fidelity: EpochFidelity) -> None:
        """Batch an epoch's share and resolutions, re-making only what differs from the last.

        Re-made samplers keep drawing from the same order generator, so a run resumed in any
        stage sees the data order an uninterrupted run would.
        """
        train_key, val_key = self._train_key(fidelity), self._val_key(fidelity)
        if train_key != self._made[0]:
            self.train = self.maker.train(fidelity.share, fidelity.train_size)
        if val_key != self._made[1]:
            self.val = self.maker.val(fidelity.eval_size)
        self._made = (train_key, val_key)

    def _train_key(self, fidelity: EpochFidelity) -> tuple[float, int | None]:
        # In memory, batches come at the stored size: only the share changes them.
        return fidelity.share, None if self.in_memory else fidelity.train_size

    def _val_key(self, fidelity: EpochFidelity) -> int | None:
        return None if self.in_memory else fidelity.eval_size


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
        self.current: torch.Tensor | None = None
        """The image indices of the batch last yielded (distillation caches by them)."""

    def __len__(self) -> int:
        count = len(self.sampler)
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        set_sampler_epoch(self.sampler, epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.long, device=self.images.device)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            self.current = index
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
        set_sampler_epoch(self.loader.sampler, epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )


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
    """Side at which in-memory image folders are decoded: enough for the train crops and the
    eval crops of every data.progressive stage."""
    return math.ceil(max(max(train_sizes(cfg)), max(eval_sizes(cfg)) / cfg.crop_pct))


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


def _val_shard(size: int, ctx: DistContext) -> list[int]:
    # Every image once over all ranks (no padding), so reduced counts are exact.
    return list(range(ctx.rank, size, ctx.world_size))


class BatchMaker:
    """Makes a rank's batches of any share of the training set and of the validation set."""

    def __init__(
        self,
        recipe: Recipe,
        ctx: DistContext,
        device: torch.device,
        source: Source,
        streamed: bool,
        interpolation: str,
        mean: tuple[float, ...],
    ):
        self.recipe = recipe
        self.ctx = ctx
        self.device = device
        self.streamed = streamed
        self.interpolation = interpolation
        self.mean = mean
        self.batch = per_rank_batch(recipe.data, ctx)
        self.order = None if ctx.enabled else torch.Generator().manual_seed(recipe.seed)
        if not streamed:  # moved once; every share's batches index the same tensors
            source.train = _on_device(source.train, device)
            source.val = _on_device(source.val, device)
        self.source = source
        labels = source.train.labels
        self._labels = labels.cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)

    @property
    def train_labels(self) -> np.ndarray:
        """Class indices of the training split (after data.fraction), on the CPU."""
        return self._labels

    def sampler(self, share: float) -> IndexOrder:
        """This rank's order over a nested, stratified share of the training set."""
        subset = None if share >= 1.0 else nested_subset(self._labels, share)
        labels = self._labels if subset is None else self._labels[subset]
        positions: IndexOrder
        if self.recipe.data.sampler == "balanced":  # balanced over the share's own classes
            positions = balanced_sampler(labels, self.recipe.seed, self.ctx, self.order)
        else:
            positions = train_sampler(len(labels), self.recipe, self.ctx, self.order)
        return positions if subset is None else SubsetOrder(positions, subset)

    def train(self, share: float, size: int) -> Batches:
        """Training batches of a share of the set (streamed ones cropped to size)."""
        sampler = self.sampler(share)
        if not self.streamed:
            assert isinstance(self.source.train, ImageArray)
            return MemoryBatches(self.source.train, self.batch, sampler, self.device, True)
        assert isinstance(self.source.train, ImageFiles)
        tf = pil_train_transform(self.recipe.augment, size, self.interpolation, self.mean)
        return self._stream(self.source.train, sampler, tf, training=True)

    def val(self, size: int) -> Batches:
        """Validation batches of this rank's shard (streamed ones resized to size)."""
        shard = _val_shard(len(self.source.val), self.ctx)
        if not self.streamed:
            assert isinstance(self.source.val, ImageArray)
            return MemoryBatches(self.source.val, self.batch, shard, self.device, False)
        assert isinstance(self.source.val, ImageFiles)
        tf = pil_eval_transform(size, self.recipe.data.crop_pct, self.interpolation)
        return self._stream(self.source.val, shard, tf, training=False)

    def _stream(
        self,
        split: ImageFiles,
        sampler: IndexOrder,
        transform: Callable[[Image.Image], torch.Tensor],
        training: bool,
    ) -> StreamBatches:
        loader = DataLoader(
            FileDataset(split, transform),
            batch_size=self.batch,
            sampler=sampler,
            num_workers=self.recipe.data.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=training,
            # Fresh workers each epoch draw their seeds from the (checkpointed) torch RNG, so
            # a resumed run augments exactly as an uninterrupted one would.
            persistent_workers=False,
        )
        return StreamBatches(loader, self.device)

    def check_sizes(self) -> None:
        """Refuse a training set, or a data.progressive stage's share of it, under one batch.

        Raises:
            TrainInputError: naming data.progressive[i] for a stage, else the whole set.
        """
        for _, _, stage in stretches(self.recipe):
            share = 1.0 if stage is None else self.recipe.data.progressive[stage].fraction or 1.0
            count = len(self.sampler(share))
            if count >= self.batch:
                continue
            if stage is None or share >= 1.0:
                raise TrainInputError(
                    f"the training set gives each worker {count} images, fewer than its batch "
                    f"of {self.batch}; lower data.batch_size or raise data.fraction"
                )
            raise TrainInputError(
                f"data.progressive[{stage}].fraction {share:g} gives each worker {count} "
                f"training images, fewer than its batch of {self.batch}; raise the stage's "
                "fraction or lower data.batch_size"
            )


def _on_device(split: Split, device: torch.device) -> ImageArray:
    assert isinstance(split, ImageArray)
    return ImageArray(split.images.to(device), split.labels.to(device))


def listed_bundle(
    recipe: Recipe,
    ctx: DistContext,
    device: torch.device,
    interpolation: str,
    mean: tuple[float, ...],
    threads: int | None = None,
) -> DataBundle:
    """rsearch.train.bundles.build_data for the datasets read as lists of images (digits,
    synthetic, image folders, CIFAR): in memory on the device, or streamed from files."""
    cfg = recipe.data
    # Generated datasets (digits, synthetic) are made at the largest training resolution.
    source = load_source(cfg, max(train_sizes(cfg)), recipe.seed)
    streamed = streams(cfg, source.train)
    if not streamed:
        source.train = decode_all(source.train, store_size(cfg), threads)
        source.val = decode_all(source.val, store_size(cfg), threads)
    if recipe.augment.repeated_aug > 1 and not ctx.enabled:
        warnings.warn(
            "augment.repeated_aug applies to multi-worker (DDP) training; one process "
            "trains without it",
            stacklevel=4,
        )
    maker = BatchMaker(recipe, ctx, device, source, streamed, interpolation, mean)
    maker.check_sizes()
    return DataBundle(maker, fidelity_at(recipe, 0))
