"""Scaling strategies as pure functions: strategy parameters -> the recipe values they set.

- `compound` (EfficientNet, arXiv:1905.11946): depth alpha^phi, width beta^phi, resolution
  gamma^phi, with alpha * beta^2 * gamma^2 within `tolerance` of `target` (2) for every trial.
- `depth_first` (ResNet-RS, arXiv:2103.07579): a depth ladder (the ResNet-RS block layouts)
  times a resolution ladder; in short training, where deeper models cannot overfit, the rung
  scales width instead (the paper's rule 1); optionally the paper's regularisation by size.
- `shrink` (TinyNet, arXiv:2010.14819): resolution, width and depth factors r, w, d below 1,
  under a FLOPs budget (`constraints.max_gflops`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling.constraints import Infeasible
from rsearch.spec.scaling.resnet_rs import RESNET_RS_LAYERS, resnet_rs_regularization
from rsearch.spec.scaling.strategies import (
    AnyStrategy,
    CompoundScaling,
    DepthFirstScaling,
    NoScaling,
    Searched,
    ShrinkScaling,
    bounds,
)

Draw = Callable[[str, FloatParam | IntParam | CategoricalParam], Any]
"""draw(name, distribution) -> value: how a searched parameter gets its value (a sampler's
suggestion, or a stored trial's value)."""

PREFIX = "scaling."
"""Sampler parameter names of a strategy start with this (`scaling.alpha`)."""


def _value(name: str, param: Searched, draw: Draw) -> Any:
    if isinstance(param, FloatParam | IntParam | CategoricalParam):
        return draw(PREFIX + name, param)
    return param


def gamma_band(strategy: CompoundScaling, alpha: float, beta: float) -> tuple[float, float] | None:
    """The gamma values that keep alpha * beta^2 * gamma^2 within tolerance of the target,
    inside gamma's own range; None when there are none."""
    base = alpha * beta**2
    low = math.sqrt(strategy.target * (1 - strategy.tolerance) / base)
    high = math.sqrt(strategy.target * (1 + strategy.tolerance) / base)
    own_low, own_high = bounds(strategy.gamma)
    low, high = max(low, own_low), min(high, own_high)
    return (low, high) if low <= high else None


GAMMA_BAND = "gamma_band"
"""Sampler parameter of a searched gamma: its position in the band the constraint allows
(0 = low end, 1 = high end). A fixed [0, 1] range works with every sampler, unlike a range
that moves with alpha and beta."""


def _compound_gamma(strategy: CompoundScaling, alpha: float, beta: float, draw: Draw) -> float:
    if not isinstance(strategy.gamma, FloatParam):
        return float(_value("gamma", strategy.gamma, draw))
    band = gamma_band(strategy, alpha, beta)
    if band is None:
        raise Infeasible(
            f"no gamma in [{strategy.gamma.low}, {strategy.gamma.high}] brings "
            f"alpha * beta^2 * gamma^2 within {strategy.tolerance:g} of {strategy.target:g} "
            f"(alpha={alpha:.4g}, beta={beta:.4g})"
        )
    position = float(draw(PREFIX + GAMMA_BAND, FloatParam(type="float", low=0.0, high=1.0)))
    return band[0] + position * (band[1] - band[0])


def _base_size(strategy: CompoundScaling | ShrinkScaling, base: Recipe) -> int:
    return strategy.base_image_size or base.data.image_size


def _sized(size: float) -> int:
    return max(8, min(1024, int(size)))


def compound_values(
    strategy: CompoundScaling, draw: Draw, base: Recipe
) -> tuple[dict[str, Any], dict[str, float]]:
    """Recipe values and the strategy's numbers of one compound-scaling trial.

    Raises:
        Infeasible: alpha * beta^2 * gamma^2 is outside target * (1 +- tolerance).
    """
    alpha = float(_value("alpha", strategy.alpha, draw))
    beta = float(_value("beta", strategy.beta, draw))
    gamma = _compound_gamma(strategy, alpha, beta, draw)
    phi = float(_value("phi", strategy.phi, draw))
    product = alpha * beta**2 * gamma**2
    info = {"alpha": alpha, "beta": beta, "gamma": gamma, "phi": phi, "product": product}
    if abs(product - strategy.target) > strategy.tolerance * strategy.target + 1e-12:
        raise Infeasible(
            f"alpha * beta^2 * gamma^2 = {product:.4g} is not within {strategy.tolerance:g} "
            f"of {strategy.target:g}",
            info,
        )
    size = _sized(round(_base_size(strategy, base) * gamma**phi))
    values = {
        "model.depth_multiplier": alpha**phi,
        "model.width_multiplier": beta**phi,
        "data.image_size": size,
        "data.eval_image_size": size,
    }
    return values, info


def depth_first_values(
    strategy: DepthFirstScaling, draw: Draw, base: Recipe
) -> tuple[dict[str, Any], dict[str, float]]:
    """Recipe values and the strategy's numbers of one depth-first (ResNet-RS) trial."""
    size = int(_choose("image_size", strategy.resolutions, draw))
    values: dict[str, Any] = {"data.image_size": size, "data.eval_image_size": size}
    info: dict[str, float] = {"image_size": size}
    depth = None
    if strategy.scales_depth(base.epochs):
        depth = int(_choose("depth", strategy.depths, draw))
        values["model.layers"] = list(RESNET_RS_LAYERS[depth])
        info["depth"] = depth
    else:
        width = float(_choose("width", strategy.widths, draw))
        values["model.width_multiplier"] = width
        info["width"] = width
    if strategy.regularization == "resnet_rs":
        values.update(resnet_rs_regularization(depth or 0, size))
    return values, info


def _choose(name: str, ladder: list[Any], draw: Draw) -> Any:
    if len(ladder) == 1:  # nothing to search: not a sampler parameter
        return ladder[0]
    return draw(PREFIX + name, CategoricalParam(type="categorical", choices=list(ladder)))


def shrink_values(
    strategy: ShrinkScaling, draw: Draw, base: Recipe
) -> tuple[dict[str, Any], dict[str, float]]:
    """Recipe values and the strategy's numbers of one TinyNet shrinking trial."""
    r = float(_value("resolution", strategy.resolution, draw))
    w = float(_value("width", strategy.width, draw))
    d = float(_value("depth", strategy.depth, draw))
    size = _sized(math.floor(_base_size(strategy, base) * r + 1e-9))
    values = {
        "model.width_multiplier": w,
        "model.depth_multiplier": d,
        "data.image_size": size,
        "data.eval_image_size": size,
    }
    return values, {"resolution": r, "width": w, "depth": d}


def scaled_values(
    strategy: AnyStrategy, draw: Draw, base: Recipe
) -> tuple[dict[str, Any], dict[str, float]]:
    """The recipe values (dotted paths) a strategy sets for one trial, and its own numbers.

    Args:
        strategy: The spec's scaling section.
        draw: Gives each searched parameter its value (see Draw).
        base: The spec's base recipe (default resolution, epochs).

    Raises:
        Infeasible: The drawn values break the strategy's constraint.
    """
    if isinstance(strategy, CompoundScaling):
        return compound_values(strategy, draw, base)
    if isinstance(strategy, DepthFirstScaling):
        return depth_first_values(strategy, draw, base)
    if isinstance(strategy, ShrinkScaling):
        return shrink_values(strategy, draw, base)
    return {}, {}


def written_paths(strategy: AnyStrategy) -> set[str]:
    """Recipe paths the strategy sets (a space must not search them too)."""
    if isinstance(strategy, NoScaling):
        return set()
    paths = {"data.image_size", "data.eval_image_size"}
    if isinstance(strategy, DepthFirstScaling):
        paths |= {"model.layers", "model.width_multiplier"}
        if strategy.regularization == "resnet_rs":
            paths |= set(resnet_rs_regularization(0, 0))
    else:
        paths |= {"model.depth_multiplier", "model.width_multiplier"}
    return paths


def recipe_params(
    space_values: dict[str, Any],
    strategy: AnyStrategy | None,
    base: Recipe,
) -> dict[str, Any]:
    """Dotted recipe paths and values of a stored trial (sampler parameters as recorded).

    The strategy's parameters (`scaling.*`) become the recipe values they produce; a proposal
    the strategy refused keeps its space values only.
    """
    params = {k: v for k, v in space_values.items() if not k.startswith(PREFIX)}
    if strategy is None:
        return params
    try:
        values, _ = scaled_values(strategy, lambda name, _: space_values[name], base)
    except (Infeasible, KeyError):
        return params
    return {**params, **values}
