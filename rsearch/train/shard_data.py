"""Training on packed shards (`data.dataset: shards`): each reader streams its own shards.

A reader is one loader worker of one rank: with R ranks and W loader workers (data.num_workers,
at least one reader per rank), reader `rank * W + worker` of the R x W takes every (R x W)-th
shard of the epoch's shard order, so no two readers read the same shard and together they read
all. Decoding and the per-image transforms run in the loader workers. The training stream of a
reader cycles over its shards (reshuffled each pass, samples mixed in a small buffer) and an
epoch is exactly `train images // (R x per-rank batch)` steps, taken from the index, so every
rank runs the same number of steps and the LR schedule knows the epoch's length up front.
Validation reads each shard once (every image exactly once over all readers).

A sample that does not decode, or the rest of a shard whose tar structure is damaged, is
skipped with a warning naming the shard and the sample's key; training goes on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from rsearch.spec.data_section import DataConfig
from rsearch.spec.recipe import Recipe
from rsearch.train.augment import pil_eval_transform, pil_train_transform
from rsearch.train.data import Batches, BatchMaker, DataBundle, per_rank_batch
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.orders import IndexOrder
from rsearch.train.shards import (
    ShardIndex,
    ShardInfo,
    decode,
    is_remote,
    iter_samples,
    node_copy,
    open_file,
    read_index,
)
from rsearch.train.splits import ImageFiles, Source
from rsearch.train.stages import fidelity_at

SHUFFLE_BUFFER = 512
"""Most training samples mixed in memory by each reader (the packer already shuffled the
shards, and each pass over them takes a new shard order)."""

BUFFER_SHARE = 8
"""A reader's buffer holds at most 1/8 of what it yields in an epoch. A reader yields nothing
until its buffer is full, and its loader worker starts afresh each epoch: a 512-image buffer
on a 700-image share kept training waiting for most of the share at every epoch's start."""


class SkippedSample(UserWarning):
    """A sample, or the rest of a shard, that could not be read and was skipped."""


@dataclass
class Readers:
    """Which readers split the shards: this rank among `world` ranks, `workers` per rank."""

    rank: int
    world: int
    workers: int

    def mine(self, shards: list[ShardInfo]) -> list[ShardInfo]:
        """This loader worker's shards."""
        info = get_worker_info()
        worker, count = (0, 1) if info is None else (info.id, info.num_workers)
        me = self.rank * count + worker
        return shards[me :: self.world * count]


class ShardStream(IterableDataset[tuple[torch.Tensor, int]]):
    """The (image, label) samples of a reader's shards, transformed in the loader worker."""

    def __init__(
        self,
        root: str,
        shards: list[ShardInfo],
        readers: Readers,
        transform: Callable[[Image.Image], torch.Tensor],
        training: bool,
        seed: int,
        buffer: int = SHUFFLE_BUFFER,
    ):
        self.root = root
        self.shards = shards
        self.readers = readers
        self.transform = transform
        self.training = training
        self.seed = seed
        self.buffer = buffer
        """Training samples mixed in memory (see shuffle_buffer)."""
        self.epoch = 0
        self.skipped = 0
        """Samples this process skipped (each also warned about with its shard and key)."""

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's shard order (loader workers get a fresh copy each epoch)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        if not self.training:
            yield from self._samples(self.readers.mine(self.shards))
            return
        info = get_worker_info()
        worker = 0 if info is None else info.id
        rng = np.random.default_rng([self.seed, self.epoch, self.readers.rank, worker])
        passes = 0
        while True:  # the epoch's length is set by the batches taken from this stream
            order = np.random.default_rng([self.seed, self.epoch, passes]).permutation(
                len(self.shards)
            )
            mine = self.readers.mine([self.shards[i] for i in order])
            if not mine:
                return
            yield from _shuffled(self._samples(mine), rng, self.buffer)
            passes += 1

    def _samples(self, shards: list[ShardInfo]) -> Iterator[tuple[torch.Tensor, int]]:
        for shard in shards:
            key = "(start)"
            try:
                with open_file(self.root, shard.name) as stream:
                    for sample in iter_samples(stream):
                        key = sample.key
                        try:
                            image = decode(sample.image)
                        except Exception as e:  # PIL raises many kinds for damaged bytes
                            self._skip(f"sample {key} of shard {shard.name} skipped: {e}")
                            continue
                        yield self.transform(image), sample.label
            except Exception as e:  # a damaged tar (TarError, OSError, ValueError): never crash
                self._skip(f"rest of shard {shard.name} after sample {key} skipped: {e}")

    def _skip(self, message: str) -> None:
        self.skipped += 1
        warnings.warn(message, SkippedSample, stacklevel=2)


def shuffle_buffer(epoch_samples: int) -> int:
    """A reader's shuffle buffer when it yields `epoch_samples` training samples an epoch."""
    return max(1, min(SHUFFLE_BUFFER, epoch_samples // BUFFER_SHARE))


def _shuffled(
    samples: Iterator[tuple[torch.Tensor, int]], rng: np.random.Generator, size: int
) -> Iterator[tuple[torch.Tensor, int]]:
    buffer: list[tuple[torch.Tensor, int]] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        i = int(rng.integers(len(buffer)))
        buffer[i], sample = sample, buffer[i]
        yield sample
    rng.shuffle(buffer)
    yield from buffer


class ShardBatches:
    """A fixed number of a loader's batches, moved to the device."""

    def __init__(self, loader: DataLoader, device: torch.device, steps: int, dataset: ShardStream):
        self.loader = loader
        self.device = device
        self.steps = steps
        self.dataset = dataset

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = iter(self.loader)
        for _ in range(self.steps):
            images, labels = next(batches)
            yield images.to(self.device, non_blocking=True), labels.to(self.device)


def usable_root(cfg: DataConfig, index: ShardIndex) -> str:
    """Where this node reads the shards: a node-local copy of remote ones when it fits."""
    assert cfg.path is not None
    if not is_remote(cfg.path):
        return cfg.path
    local = node_copy(cfg.path, index)
    if local is None:
        warnings.warn(
            f"the shards at {cfg.path} do not fit on this node's disk; every trial streams "
            "them from the store",
            stacklevel=2,
        )
        return cfg.path
    return local


class ShardMaker(BatchMaker):
    """BatchMaker's interface over packed shards (streamed; no samplers)."""

    def __init__(
        self,
        recipe: Recipe,
        ctx: DistContext,
        device: torch.device,
        interpolation: str,
        mean: tuple[float, ...],
    ):
        cfg = recipe.data
        assert cfg.path is not None
        self.index = read_index(cfg.path)
        self.root = usable_root(cfg, self.index)
        self.recipe, self.ctx, self.device = recipe, ctx, device
        self.streamed, self.interpolation, self.mean = True, interpolation, mean
        self.batch = per_rank_batch(cfg, ctx)
        self.order = None
        self.readers = Readers(ctx.rank, ctx.world_size, max(1, cfg.num_workers))
        # Labels and files are not listed: the loop needs only the class count.
        empty = ImageFiles([], [])
        self.source = Source(empty, empty, len(self.index.classes))
        self._refuse_few_shards()

    def _refuse_few_shards(self) -> None:
        readers = self.readers.world * self.readers.workers
        train = len(self.index.shards["train"])
        if train < readers:
            raise TrainInputError(
                f"the shards at {self.recipe.data.path} hold {train} training shards, fewer "
                f"than the {readers} readers ({self.readers.world} workers x "
                f"{self.readers.workers} loader workers); pack with a smaller --shard-size or "
                "lower data.num_workers"
            )
        if len(self.index.shards["val"]) < readers:
            warnings.warn(
                f"{len(self.index.shards['val'])} validation shards for {readers} readers: "
                "some readers validate nothing",
                stacklevel=3,
            )

    @property
    def train_labels(self) -> np.ndarray:
        """Never read: shards list no labels (the spec refuses recipes that need them)."""
        raise TrainInputError("a shard set lists no training labels (rsearch.spec.stream_limits)")

    def steps(self) -> int:
        """Training steps of an epoch on every rank, from the index's count."""
        return self.index.count("train") // (self.ctx.world_size * self.batch)

    def sampler(self, share: float) -> IndexOrder:
        """Shards have no sampler: the order is the shard order of each epoch."""
        raise NotImplementedError("shards are read in streams, not by index")

    def train(self, share: float, size: int) -> Batches:
        """Training batches: exactly steps() per epoch."""
        tf = pil_train_transform(self.recipe.augment, size, self.interpolation, self.mean)
        return self._loader(self.index.shards["train"], tf, True, self.steps())

    def val(self, size: int) -> Batches:
        """Validation batches of this rank's shards, each image once."""
        tf = pil_eval_transform(size, self.recipe.data.crop_pct, self.interpolation)
        count = math.ceil(self.index.count("val") / self.ctx.world_size / self.batch)
        return self._loader(self.index.shards["val"], tf, False, count)

    def _loader(
        self,
        shards: list[ShardInfo],
        transform: Callable[[Image.Image], torch.Tensor],
        training: bool,
        steps: int,
    ) -> Batches:
        per_reader = steps * self.batch // self.readers.workers
        stream = ShardStream(
            self.root,
            shards,
            self.readers,
            transform,
            training,
            self.recipe.seed,
            shuffle_buffer(per_reader),
        )
        loader = DataLoader(
            stream,
            batch_size=self.batch,
            num_workers=self.recipe.data.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=training,
            persistent_workers=False,
        )
        if training:
            return ShardBatches(loader, self.device, steps, stream)
        return _ValBatches(loader, self.device, steps, stream)

    def check_sizes(self) -> None:
        """Refuse a training set under one batch per rank."""
        if self.steps() < 1:
            raise TrainInputError(
                f"the shards hold {self.index.count('train')} training images, fewer than one "
                f"batch of {self.batch} for each of {self.ctx.world_size} workers; lower "
                "data.batch_size"
            )


class _ValBatches(ShardBatches):
    """Every validation batch of the readers' shards (their number is known only roughly)."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield images.to(self.device, non_blocking=True), labels.to(self.device)


def shard_bundle(
    recipe: Recipe,
    ctx: DistContext,
    device: torch.device,
    interpolation: str,
    mean: tuple[float, ...],
) -> DataBundle:
    """build_data for `data.dataset: shards`."""
    maker = ShardMaker(recipe, ctx, device, interpolation, mean)
    maker.check_sizes()
    return DataBundle(maker, fidelity_at(recipe, 0))
