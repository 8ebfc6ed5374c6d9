"""Multi-resolution training and evaluation (ResFormer, Tian et al., arXiv:2212.00776).

Training draws each step's resolution from data.train_resolutions (rsearch.train.stages'
resolution_draws); in-memory batches are cropped and resized on the device, so a step's
resolution is only the choice of its transform. Evaluation runs the model at each of
data.eval_resolutions every epoch, besides the usual evaluation, and reports each one under its
own name (rsearch.spec.metric_names.at_resolution).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rsearch.spec.metric_names import MEAN, at_resolution
from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import step_resolutions
from rsearch.train.augment import EvalTransform, TrainTransform
from rsearch.train.data import Batches, DataBundle
from rsearch.train.errors import TrainInputError
from rsearch.train.stages import resolution_draws
from rsearch.train.sums import EvalSums


def check_multires(recipe: Recipe, in_memory: bool) -> None:
    """Refuse per-step resolutions on streamed data.

    Loader workers crop and resize a whole epoch's images ahead of the steps that use them, so
    a step's resolution cannot follow a per-step draw there.

    Raises:
        TrainInputError: data.train_resolutions on an image folder that streams.
    """
    if step_resolutions(recipe.data) and not in_memory:
        raise TrainInputError(
            "data.train_resolutions needs in-memory data (resized on the device each step); "
            "this image folder streams through loader workers: use data.num_workers 0 and a "
            "folder small enough to hold in memory, or leave train_resolutions empty"
        )


class StepTransforms:
    """The training transform of each step of an epoch under data.train_resolutions."""

    def __init__(self, recipe: Recipe, make: Callable[[int], TrainTransform]):
        """Make one training transform per resolution of the set.

        Args:
            recipe: the run's recipe (its seed and data.train_resolutions).
            make: the training transform at a resolution (session.Transforms.train).
        """
        self.recipe = recipe
        self.by_size = {size: make(size) for size in step_resolutions(recipe.data)}

    def for_epoch(self, epoch: int, steps: int) -> list[TrainTransform]:
        """The transform of each of a 0-based epoch's steps."""
        return [self.by_size[size] for size in resolution_draws(self.recipe, epoch, steps)]


@dataclass(frozen=True)
class EvalSet:
    """The batches and transform of one test resolution of data.eval_resolutions."""

    size: int
    transform: EvalTransform
    batches: Batches | None
    """Streamed data's batches resized to size in the workers; None for in-memory data, which
    evaluates the run's own validation batches, resized on the device."""

    def batches_of(self, data: DataBundle) -> Batches:
        """The batches to evaluate."""
        return self.batches if self.batches is not None else data.val


def eval_sets(
    recipe: Recipe, data: DataBundle, make: Callable[[int], EvalTransform]
) -> list[EvalSet]:
    """One EvalSet per test resolution of data.eval_resolutions, smallest first."""
    sizes = sorted(recipe.data.eval_resolutions)
    streamed = not data.in_memory
    return [EvalSet(size, make(size), data.maker.val(size) if streamed else None) for size in sizes]


def resolution_metrics(sums: dict[int, EvalSums]) -> dict[str, float]:
    """val_top1@N and val_loss@N of each test resolution, and val_top1@mean over them."""
    out: dict[str, float] = {}
    for size, s in sorted(sums.items()):
        out[at_resolution("val_top1", size)] = s.top1_pct
        out[at_resolution("val_loss", size)] = s.mean_loss
    if sums:
        out[at_resolution("val_top1", MEAN)] = sum(s.top1_pct for s in sums.values()) / len(sums)
    return out
