"""Cross-section checks of the scaling section: against the space, base recipe and sampler."""

from __future__ import annotations

from typing import Any

from rsearch.spec.errors import Problem
from rsearch.spec.params import FloatParam
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling.strategies import (
    AnyStrategy,
    CompoundScaling,
    DepthFirstScaling,
    NoScaling,
)
from rsearch.spec.scaling.values import written_paths


def check_scaling(
    strategy: AnyStrategy,
    space: dict[str, Any],
    base: Recipe,
    algorithm: str | None,
    scheduler: str | None,
) -> list[Problem]:
    """Problems of a scaling section against the space, base recipe, sampler and scheduler."""
    if isinstance(strategy, NoScaling):
        return []
    problems = [
        Problem(("space", path), f"{path} is set by scaling {strategy.type}; do not search it too")
        for path in sorted(written_paths(strategy) & set(space))
    ]
    if scheduler == "pbt":
        problems.append(
            Problem(("scaling", "type"), "pbt cannot change a model's size mid-training")
        )
    if isinstance(strategy, CompoundScaling):
        low, high = strategy.product_range()
        target, tol = strategy.target, strategy.tolerance
        if high < target * (1 - tol) or low > target * (1 + tol):
            problems.append(
                Problem(
                    ("scaling", "type"),
                    f"alpha * beta^2 * gamma^2 ranges over [{low:.4g}, {high:.4g}], never within "
                    f"{tol:g} of {target:g}; widen alpha, beta or gamma",
                )
            )
    if isinstance(strategy, DepthFirstScaling) and strategy.scales_depth(base.epochs):
        if base.model.layers is not None or not base.model.name.startswith(("resnet", "seresnet")):
            problems.append(
                Problem(
                    ("scaling", "depths"),
                    f"depth_first sets model.layers of a 4-stage ResNet; base.model.name is "
                    f"{base.model.name!r} (use resnet50/resnet50d/resnetrs50/...)",
                )
            )
    if algorithm == "grid":
        problems += [
            Problem(("scaling", name), "grid search needs a finite grid: give it a step")
            for name in ("alpha", "beta", "phi", "resolution", "width", "depth")
            if isinstance(getattr(strategy, name, None), FloatParam)
            and getattr(strategy, name).step is None
        ]
    return problems
