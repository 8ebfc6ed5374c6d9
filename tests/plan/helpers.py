"""What the planner tests share."""

from __future__ import annotations

from rsearch.plan.throughput import Rate
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Resources

SECONDS_PER_IMAGE = 0.004


class ConstantSpeed:
    """A worker that trains any model at any size at one rate (device time made checkable)."""

    def train_rate(self, recipe: Recipe, image_size: int, resources: Resources) -> Rate:
        """SECONDS_PER_IMAGE, whatever is asked."""
        return Rate(SECONDS_PER_IMAGE, "measured")
