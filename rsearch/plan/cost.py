"""What one trial costs, epoch by epoch, before it runs: FLOPs, images, fidelity, device time.

The FLOPs follow the training core's definitions exactly (2 FLOPs per multiply-add):

- an epoch's training FLOPs are `train_flops(model, the epoch's train size)` times the images the
  epoch trains on (whole batches only: each of W workers takes `ceil(n / W)` of the n images of
  the epoch's subset, as its sampler does, and drops its last partial batch), twice under SAM
  (two forward/backward passes a step);
- an epoch's evaluation FLOPs are `forward_flops(model, eval size)` times the validation
  images, twice with EMA (the EMA copy is evaluated too);
- an epoch's fidelity is `epoch_fidelity` (full-fidelity epoch equivalents).

Device time comes from a `Speed` (rsearch.plan.throughput): seconds per training image of one
worker at the epoch's train resolution; evaluating an image costs that times
forward_flops(eval size) / train_flops(train size) (about a third at equal sizes); SAM's steps
take twice a plain step. Device-seconds are wall seconds times workers, as the training core counts
them. Nothing here reads an image: counts come from `rsearch.train.image_counts.count_images`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rsearch.errors import UserError
from rsearch.machine import DeviceKind
from rsearch.spec.model_section import ModelConfig, architecture
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import BudgetUnit, Resources

if TYPE_CHECKING:
    from torch import nn

    from rsearch.plan.throughput import Speed
    from rsearch.train.image_counts import ImageCounts

SpeedSource = Literal["measured", "reference", "nominal"]
"""Where device time comes from: measured here, a reference model's FLOPs/s measured here, or
a nominal FLOPs/s (no such device here)."""

REPEAT_AUG_ROUND = 256
"""timm's RepeatAugSampler selects a multiple of this many images per epoch (its default)."""

FIDELITY_TOLERANCE = 1e-9
"""A cumulative fidelity this close below a milestone counts as reaching it (float sums)."""


@dataclass(frozen=True)
class EpochCost:
    """One epoch of one trial."""

    train_size: int
    """Train resolution of the epoch (data.progressive)."""
    eval_size: int
    """Evaluation resolution of the epoch (data.eval_rule)."""
    train_images: int
    """Images trained on, over all workers (whole batches only)."""
    eval_images: int
    """Images evaluated (the validation split, twice with EMA)."""
    train_flops: float
    eval_flops: float
    fidelity: float
    """The epoch's compute in full-fidelity epoch equivalents."""
    device_s: float
    """Device-seconds: wall seconds times workers."""


@dataclass(frozen=True)
class TrialCost:
    """A trial's recipe priced epoch by epoch."""

    epochs: tuple[EpochCost, ...]
    device_kind: DeviceKind
    workers: int
    speed_source: SpeedSource
    train_images_per_s: float
    """One worker's training throughput at the recipe's final train resolution."""


@dataclass(frozen=True)
class Spend:
    """What a trial spends up to (and including) an epoch."""

    epochs: float
    """Epochs trained (an expectation may be fractional)."""
    train_flops: float
    eval_flops: float
    fidelity: float
    device_s: float
    wall_s: float

    @property
    def flops(self) -> float:
        """Training plus evaluation FLOPs."""
        return self.train_flops + self.eval_flops

    @property
    def device_hours(self) -> float:
        """Device-seconds in hours."""
        return self.device_s / 3600.0


NOTHING = Spend(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def device_kind(resources: Resources) -> DeviceKind:
    """The device a trial's workers train on: a GPU when they hold one."""
    return "gpu" if resources.gpus_per_worker > 0 else "cpu"


def worker_threads(resources: Resources) -> int:
    """CPU threads each worker trains with (as the trial driver passes them to fit)."""
    return max(1, int(resources.cpus_per_worker))


def eval_size_at(recipe: Recipe, epoch: int) -> int:
    """Evaluation resolution after a 0-based epoch under data.eval_rule (the trainer's rule)."""
    from rsearch.spec.resolutions import eval_size_for

    return eval_size_for(recipe.data, recipe.stage_at(epoch)[0])


def images_seen(subset: int, batch_size: int, workers: int, repeated_aug: int = 1) -> int:
    """Training images of an epoch over all workers, as the samplers hand them out.

    Args:
        subset: images in the epoch's training subset.
        batch_size: the global batch (data.batch_size).
        workers: Ray Train workers of the trial.
        repeated_aug: augment.repeated_aug (applies with several workers only).

    Raises:
        UserError: the batch does not split evenly across the workers.
    """
    if batch_size % workers:
        raise UserError(
            f"data.batch_size {batch_size} does not split evenly across {workers} workers; "
            f"use a multiple of {workers}"
        )
    per_rank_batch = batch_size // workers
    if workers == 1:
        per_rank = subset  # one process samples without padding or repeats
    elif repeated_aug > 1:
        per_rank = _repeat_aug_samples(subset, workers, repeated_aug)
    else:
        per_rank = math.ceil(subset / workers)  # DistributedSampler pads to a multiple of W
    return workers * per_rank_batch * (per_rank // per_rank_batch)


def _repeat_aug_samples(n: int, workers: int, repeats: int) -> int:
    # timm's RepeatAugSampler: each rank takes a rounded share of one pass over the data,
    # not of the repeated stream (selected_round=256, selected_ratio=workers).
    total = math.ceil(n * repeats / workers)
    if n >= REPEAT_AUG_ROUND:
        selected = math.floor(n // REPEAT_AUG_ROUND * REPEAT_AUG_ROUND / workers)
    else:
        selected = math.ceil(n / workers)
    return min(selected, total)


def estimate_trial(recipe: Recipe, resources: Resources, speed: Speed | None = None) -> TrialCost:
    """Price a trial's recipe epoch by epoch, reading no images.

    Args:
        recipe: the trial's resolved recipe.
        resources: what the trial holds (workers, CPUs and GPUs per worker).
        speed: where device time comes from; default: measured throughput on this machine
            (rsearch.plan.throughput.MeasuredSpeed), cached per architecture and hardware.

    Raises:
        UserError: the recipe cannot train (model, data path, batch split).
    """
    from rsearch.plan.throughput import MeasuredSpeed  # deferred: it imports this module

    speed = speed or MeasuredSpeed()
    counts = _image_counts(recipe.data.model_dump_json(), recipe.seed)
    workers = resources.workers_per_trial
    kind = device_kind(resources)
    passes = 2 if recipe.optim.name == "sam" else 1  # SAM: two forward/backward passes a step
    fidelity = recipe_fidelity(recipe)
    evals = 2 if recipe.ema.enabled else 1
    epochs = []
    for epoch in range(recipe.epochs):
        size, _ = recipe.stage_at(epoch)
        eval_size = eval_size_at(recipe, epoch)
        subset = _stage_images(recipe, counts.train, counts.stages, epoch)
        images = images_seen(subset, recipe.data.batch_size, workers, recipe.augment.repeated_aug)
        per_image_train = model_flops(recipe, size, "train")
        per_image_eval = model_flops(recipe, eval_size, "forward")
        seconds = speed.train_rate(recipe, size, resources).seconds_per_image
        eval_seconds = seconds * per_image_eval / per_image_train
        epochs.append(
            EpochCost(
                train_size=size,
                eval_size=eval_size,
                train_images=images,
                eval_images=counts.val * evals,
                train_flops=per_image_train * passes * images,
                eval_flops=per_image_eval * counts.val * evals,
                fidelity=fidelity[epoch],
                device_s=images * seconds * passes + counts.val * evals * eval_seconds,
            )
        )
    final = speed.train_rate(recipe, recipe.data.image_size, resources)
    return TrialCost(tuple(epochs), kind, workers, final.source, 1.0 / final.seconds_per_image)


@functools.lru_cache(maxsize=64)
def _image_counts(data_json: str, seed: int) -> ImageCounts:
    # Trials of a search share their data section: an image folder is listed once.
    from rsearch.spec.data_section import DataConfig
    from rsearch.train.image_counts import count_images

    return count_images(DataConfig.model_validate_json(data_json), seed)


def _stage_images(recipe: Recipe, train: int, stages: Sequence[int], epoch: int) -> int:
    start = 0
    for stage, images in zip(recipe.data.progressive, stages, strict=True):
        if epoch < start + stage.epochs:
            return images
        start += stage.epochs
    return train


def cost_to_epoch(cost: TrialCost, epochs: int) -> Spend:
    """What a trial spends in its first `epochs` epochs (clamped to the trial's length)."""
    done = cost.epochs[: max(0, epochs)]
    device_s = sum(e.device_s for e in done)
    return Spend(
        epochs=float(len(done)),
        train_flops=sum(e.train_flops for e in done),
        eval_flops=sum(e.eval_flops for e in done),
        fidelity=sum(e.fidelity for e in done),
        device_s=device_s,
        wall_s=device_s / cost.workers,
    )


def epochs_to_reach(cost: TrialCost, milestone: float, unit: BudgetUnit) -> int:
    """Epochs after which a trial has reached a milestone in a scheduler's unit.

    A scheduler acts on the first report at or past the milestone: epochs are reported as whole
    numbers, so a milestone of 1.5 epochs is reached after epoch 2; in compute, after the first
    epoch whose cumulative fidelity reaches it. A trial that never gets there ends first:
    the result is then its whole length.
    """
    if unit == "epochs":
        return min(len(cost.epochs), max(0, math.ceil(milestone - FIDELITY_TOLERANCE)))
    total = 0.0
    for index, epoch in enumerate(cost.epochs, start=1):
        total += epoch.fidelity
        if total >= milestone - FIDELITY_TOLERANCE:
            return index
    return len(cost.epochs)


def weighted(spends: Sequence[tuple[float, Spend]]) -> Spend:
    """The expectation of spends, each with its probability."""
    return Spend(
        epochs=sum(p * s.epochs for p, s in spends),
        train_flops=sum(p * s.train_flops for p, s in spends),
        eval_flops=sum(p * s.eval_flops for p, s in spends),
        fidelity=sum(p * s.fidelity for p, s in spends),
        device_s=sum(p * s.device_s for p, s in spends),
        wall_s=sum(p * s.wall_s for p, s in spends),
    )


def added(spends: Sequence[Spend]) -> Spend:
    """The sum of spends."""
    return weighted([(1.0, s) for s in spends])


# --- FLOPs of one image, per architecture and resolution ------------------------------------------


def model_flops(recipe: Recipe, image_size: int, kind: Literal["train", "forward"]) -> float:
    """FLOPs of one image through the recipe's model: a training pass or an evaluation forward.

    Counted once per architecture (the model section and the class count) and resolution in
    this process, on the meta device.
    """
    from rsearch.train.sources import count_classes

    return _flops(_model_key(recipe), count_classes(recipe.data), image_size, kind)


FLOPS_CACHE = "flops"
"""Counted FLOPs per architecture and resolution on disk (rsearch.cache), by torch and
timm version: counting an EfficientNet's training pass takes seconds, every later plan or
admission check reads it."""


@functools.lru_cache(maxsize=512)
def _flops(model_key: str, num_classes: int, image_size: int, kind: str) -> float:
    from importlib import metadata

    from rsearch.cache import JsonCache
    from rsearch.train.measure import forward_flops, train_flops

    versions = {name: metadata.version(name) for name in ("torch", "timm")}
    key = json.dumps([model_key, num_classes, image_size, kind, versions])
    cache = JsonCache(FLOPS_CACHE)
    found = cache.get(key)
    if isinstance(found, float):
        return found
    model = _build_meta(model_key, num_classes)
    count = train_flops(model, image_size) if kind == "train" else forward_flops(model, image_size)
    cache.put(key, float(count))
    return float(count)


def recipe_fidelity(recipe: Recipe) -> tuple[float, ...]:
    """`epoch_fidelity` of the recipe's model, counted once per architecture and schedule."""
    from rsearch.train.sources import count_classes

    if not recipe.data.progressive:  # every epoch is a full-fidelity epoch: 1 (x / x)
        return (1.0,) * recipe.epochs
    return _fidelity(_model_key(recipe), count_classes(recipe.data), _schedule_key(recipe))


def _schedule_key(recipe: Recipe) -> str:
    # Only the train resolutions, the stage shares and the epochs shape epoch_fidelity.
    data = recipe.data
    return json.dumps(
        {
            "image_size": data.image_size,
            "progressive": [s.model_dump(mode="json") for s in data.progressive],
            "epochs": recipe.epochs,
        }
    )


@functools.lru_cache(maxsize=256)
def _fidelity(model_key: str, num_classes: int, schedule_key: str) -> tuple[float, ...]:
    from rsearch.spec.data_section import DataConfig
    from rsearch.train.measure import epoch_fidelity

    schedule = json.loads(schedule_key)
    recipe = Recipe(
        model=ModelConfig.model_validate_json(model_key),
        data=DataConfig(image_size=schedule["image_size"], progressive=schedule["progressive"]),
        epochs=schedule["epochs"],
    )
    return tuple(epoch_fidelity(_build_meta(model_key, num_classes), recipe))


def _model_key(recipe: Recipe) -> str:
    return architecture(recipe.model)


@functools.lru_cache(maxsize=64)
def _build_meta(model_key: str, num_classes: int) -> nn.Module:
    import torch

    from rsearch.train.model import build_model

    recipe = Recipe(model=ModelConfig.model_validate_json(model_key))
    with torch.device("meta"):
        return build_model(recipe, num_classes, load_weights=False)
