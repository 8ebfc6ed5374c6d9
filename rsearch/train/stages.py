"""The resolutions a run trains and evaluates at: data.progressive's stage of each epoch and
the stretches of epochs a schedule restarted at each stage spans, data.train_resolutions'
draw for each step. The sets of train and eval sizes of a data section are the spec layer's
(rsearch.spec.resolutions), which spec validation reads too.

Pure functions of the recipe (no torch), so the data, the transforms, the LR schedule and the
compute accounting all read an epoch's resolutions from one place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import eval_size_for, step_resolutions


@dataclass(frozen=True)
class EpochFidelity:
    """What one epoch trains and evaluates at."""

    train_size: int
    """Training resolution in pixels."""
    share: float
    """Share of the training set (after data.fraction) the epoch trains on."""
    eval_size: int
    """Evaluation resolution in pixels (data.eval_rule)."""
    stage: int | None
    """Index of the epoch's data.progressive stage; None after the last stage."""


def resolution_draws(recipe: Recipe, epoch: int, steps: int) -> list[int]:
    """The resolution of each of a 0-based epoch's steps, drawn uniformly from
    step_resolutions (empty list when there is no set).

    The draw depends only on the recipe's seed and the epoch, so every rank trains a step at
    the same resolution and a run resumed at any epoch draws what an uninterrupted run would.
    """
    sizes = step_resolutions(recipe.data)
    if not sizes:
        return []
    draw = random.Random(f"train_resolutions/{recipe.seed}/{epoch}")
    return [draw.choice(sizes) for _ in range(steps)]


def stretches(recipe: Recipe) -> list[tuple[int, int, int | None]]:
    """(first epoch, epochs, stage index) of each data.progressive stage, then of the epochs
    after the last stage (stage index None) when there are any."""
    out: list[tuple[int, int, int | None]] = []
    start = 0
    for index, stage in enumerate(recipe.data.progressive):
        out.append((start, stage.epochs, index))
        start += stage.epochs
    if start < recipe.epochs:
        out.append((start, recipe.epochs - start, None))
    return out


def fidelity_at(recipe: Recipe, epoch: int) -> EpochFidelity:
    """The fidelity of a 0-based epoch."""
    size, share = recipe.stage_at(epoch)
    stage = next(
        (index for start, count, index in stretches(recipe) if start <= epoch < start + count),
        None,
    )
    return EpochFidelity(size, share, eval_size_for(recipe.data, size), stage)
