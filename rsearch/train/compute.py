"""Compute accounting: the FLOPs and device-seconds each epoch of a run spends.

Per-image FLOPs are counted once per model and resolution when a run starts (counting runs the
model under torch's FlopCounterMode, which is far too slow for every step); each epoch then
multiplies them by the images it really trained and evaluated over all workers. Totals add up
the run's history, which checkpoints carry, so a resumed trial keeps counting where it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import nn

from rsearch.spec.recipe import Recipe
from rsearch.train.measure import epoch_fidelity, forward_flops, train_flops


@dataclass(frozen=True)
class ComputeCosts:
    """Per-image FLOPs (2 per multiply-add) of a run's model at every resolution it uses."""

    train: dict[int, float]
    """train_flops (forward and backward) per image, by training resolution."""
    forward: dict[int, float]
    """forward_flops per image, by evaluation resolution."""
    fidelity: list[float]
    """epoch_fidelity of each of the recipe's epochs (full-fidelity epoch equivalents)."""
    passes: int
    """Forward-backward passes a training step makes over each image (two under SAM)."""


def count_costs(
    model: nn.Module, recipe: Recipe, train_sizes: Iterable[int], eval_sizes: Iterable[int]
) -> ComputeCosts:
    """Count the model's per-image FLOPs at each resolution the run trains and evaluates at.

    Counting a training pass runs the model (and draws dropout masks): call it before the
    run's generators are seeded for training.
    """
    sizes = sorted({*train_sizes, recipe.data.image_size})  # image_size: fidelity's unit
    train = {size: train_flops(model, size) for size in sizes}
    forward = {size: forward_flops(model, size) for size in sorted(set(eval_sizes))}
    passes = 2 if recipe.optim.name == "sam" else 1
    return ComputeCosts(train, forward, epoch_fidelity(model, recipe, train), passes)


@dataclass(frozen=True)
class EpochWork:
    """What one epoch did, summed over all workers."""

    epoch: int
    """0-based epoch."""
    train_size: int
    """Training resolution."""
    share: float
    """Share of the training set trained on."""
    eval_size: int
    """Evaluation resolution."""
    train_images: float
    """Training images seen, over all workers."""
    val_images: float
    """Validation images evaluated per evaluation, over all workers."""
    evaluations: int
    """Passes over the validation set: 1, or 2 when the EMA weights are evaluated too."""
    epoch_s: float
    """Wall time of the epoch on its slowest worker."""
    workers: int
    """Workers (processes, each with one CPU slot or one GPU) that trained."""
    images_by_size: dict[int, float] | None = None
    """Training images seen at each resolution, when data.train_resolutions drew each step's
    (train_size then counts none of them)."""
    extra_eval_sizes: tuple[int, ...] = ()
    """Test resolutions of data.eval_resolutions evaluated besides eval_size, once each."""
    split_images: float = 0.0
    """Images of the data.eval_splits sets, evaluated at eval_size once each."""


def epoch_compute(
    costs: ComputeCosts, work: EpochWork, history: Iterable[Mapping[str, object]]
) -> dict[str, float]:
    """The epoch's compute metrics (named in rsearch.spec.metrics).

    Args:
        costs: the run's per-image FLOPs.
        work: what the epoch did.
        history: the metrics of the epochs trained before this one (a resumed run's included);
            epochs recorded without compute metrics count nothing.
    """
    images = work.images_by_size or {work.train_size: work.train_images}
    train = sum(costs.train[size] * n for size, n in images.items()) * costs.passes
    evaluation = costs.forward[work.eval_size] * work.val_images * work.evaluations
    evaluation += sum(costs.forward[size] * work.val_images for size in work.extra_eval_sizes)
    evaluation += costs.forward[work.eval_size] * work.split_images
    device_s = work.epoch_s * work.workers
    before = list(history)
    return {
        "epoch_train_flops": train,
        "epoch_eval_flops": evaluation,
        "total_flops": _sum(before, "epoch_train_flops", "epoch_eval_flops") + train + evaluation,
        "device_s": device_s,
        "total_device_s": _sum(before, "device_s") + device_s,
        "fidelity": sum(costs.fidelity[: work.epoch + 1]),
        "train_image_size": work.train_size,
        "train_fraction": work.share,
        "eval_image_size": work.eval_size,
    }


def _sum(history: list[Mapping[str, object]], *keys: str) -> float:
    total = 0.0
    for metrics in history:
        for key in keys:
            value = metrics.get(key, 0.0)
            total += value if isinstance(value, int | float) else 0.0
    return total
