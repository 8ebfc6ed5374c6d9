"""Scaling strategies of the seed papers, as a spec section and as pure functions.

A strategy's parameters are fixed numbers or searched distributions; given their values, a
strategy produces the recipe values it scales (model depth/width, resolution, drop rates):

- `compound` (EfficientNet, arXiv:1905.11946): depth alpha^phi, width beta^phi, resolution
  gamma^phi, with alpha * beta^2 * gamma^2 within `tolerance` of `target` (2) for every trial.
- `depth_first` (ResNet-RS, arXiv:2103.07579): a depth ladder (the ResNet-RS block layouts)
  times a resolution ladder; in short training, where deeper models cannot overfit, the rung
  scales width instead (the paper's rule 1); optionally the paper's regularisation by size.
- `shrink` (TinyNet, arXiv:2010.14819): resolution, width and depth factors r, w, d below 1,
  under a FLOPs budget (`constraints.max_gflops`).

`constraints` bounds the cost of a trial's model; a proposal over budget is rejected before
anything trains (the check itself lives in rsearch.tune, which may build models).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rsearch.spec.base import Strict
from rsearch.spec.errors import Problem
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam, Param
from rsearch.spec.recipe import Recipe

Searched = float | Param
"""A strategy parameter: a fixed number, or a distribution the sampler searches."""

Draw = Callable[[str, FloatParam | IntParam | CategoricalParam], Any]
"""draw(name, distribution) -> value: how a searched parameter gets its value (a sampler's
suggestion, or a stored trial's value)."""

PREFIX = "scaling."
"""Sampler parameter names of a strategy start with this (`scaling.alpha`)."""

RESNET_RS_LAYERS: dict[int, list[int]] = {
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
    200: [3, 24, 36, 3],
    270: [4, 29, 53, 4],
    350: [4, 36, 72, 4],
    420: [4, 44, 87, 4],
}
"""Blocks per stage of ResNet-RS depths (arXiv:2103.07579; timm's resnetrs*)."""


class Infeasible(Exception):  # noqa: N818  (a verdict on a proposal, not a program error)
    """A proposal the strategy or the budget refuses; the sampler is told it as PRUNED."""

    def __init__(self, reason: str, attrs: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.attrs = attrs or {}


def _no_conditions(value: Any) -> Any:
    if isinstance(value, FloatParam | IntParam | CategoricalParam) and value.when:
        raise ValueError("a scaling parameter cannot have `when` conditions")
    return value


class NoScaling(Strict):
    """No strategy: the base recipe and the space decide every trial's size."""

    type: Literal["none"]


class CompoundScaling(Strict):
    """EfficientNet compound scaling: alpha, beta, gamma under alpha * beta^2 * gamma^2 ~ target."""

    type: Literal["compound"]
    alpha: Searched = 1.2
    """Depth base: depth_multiplier = alpha^phi (paper: 1.2)."""
    beta: Searched = 1.1
    """Width base: width_multiplier = beta^phi (paper: 1.1)."""
    gamma: Searched = 1.15
    """Resolution base: image_size = base_image_size * gamma^phi (paper: 1.15). A float range
    is searched inside the band the constraint leaves for the drawn alpha and beta."""
    phi: Searched = 1.0
    """Compound coefficient: how many times the resources double."""
    target: float = Field(2.0, gt=0.0)
    """alpha * beta^2 * gamma^2 aims at this (2: each phi step doubles the FLOPs)."""
    tolerance: float = Field(0.05, ge=0.0, lt=1.0)
    """Relative tolerance of the constraint: the product stays in target * (1 +- tolerance)."""
    base_image_size: int | None = Field(None, ge=8, le=1024)
    """Resolution at phi = 0; defaults to the base recipe's data.image_size."""

    _plain = field_validator("alpha", "beta", "gamma", "phi")(_no_conditions)

    def product_range(self) -> tuple[float, float]:
        """The smallest and largest alpha * beta^2 * gamma^2 the ranges allow."""
        lows, highs = zip(*(_bounds(p) for p in (self.alpha, self.beta, self.gamma)), strict=True)
        return lows[0] * lows[1] ** 2 * lows[2] ** 2, highs[0] * highs[1] ** 2 * highs[2] ** 2


class DepthFirstScaling(Strict):
    """ResNet-RS scaling: a depth (or width) ladder times a slowly increasing resolution ladder."""

    type: Literal["depth_first"]
    depths: list[int] = Field(default_factory=lambda: [50, 101, 152, 200], min_length=1)
    """ResNet-RS depths to try; each sets model.layers to that depth's block layout."""
    widths: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    """Width multipliers to try when the rung scales width."""
    resolutions: list[int] = Field(default_factory=lambda: [160, 192, 224], min_length=1)
    """The resolution ladder (ResNet-RS grows it more slowly than EfficientNet's 1.15^phi)."""
    scale: Literal["depth", "width", "by_epochs"] = "depth"
    """What the size rung scales; by_epochs applies rule 1 of the paper: depth when the base
    recipe trains at least overfit_epochs (overfitting can occur), width otherwise."""
    overfit_epochs: int | None = Field(None, ge=1)
    """Epochs from which training is long enough to overfit (needed by scale: by_epochs)."""
    regularization: Literal["none", "resnet_rs"] = "none"
    """resnet_rs: per trial, the paper's regularisation by size: dropout 0.25 (0.4 from 320
    px), stochastic depth 0.1 from depth 200, RandAugment magnitude 10 up to 160 px else 15."""

    @field_validator("depths")
    @classmethod
    def _known_depths(cls, depths: list[int]) -> list[int]:
        unknown = [d for d in depths if d not in RESNET_RS_LAYERS]
        if unknown:
            raise ValueError(
                f"no ResNet-RS layout for depth {unknown}; use {list(RESNET_RS_LAYERS)}"
            )
        return depths

    @field_validator("widths")
    @classmethod
    def _positive_widths(cls, widths: list[float]) -> list[float]:
        if any(w <= 0 or w > 8 for w in widths):
            raise ValueError("widths must lie in (0, 8]")
        return widths

    @field_validator("resolutions")
    @classmethod
    def _valid_resolutions(cls, sizes: list[int]) -> list[int]:
        if any(s < 8 or s > 1024 for s in sizes):
            raise ValueError("resolutions must lie in [8, 1024]")
        return sizes

    @model_validator(mode="after")
    def _threshold_when_needed(self) -> DepthFirstScaling:
        if self.scale == "by_epochs" and self.overfit_epochs is None:
            raise ValueError("scale: by_epochs needs overfit_epochs")
        return self

    def scales_depth(self, epochs: int) -> bool:
        """Whether the rung scales depth (else width) for a recipe training this many epochs."""
        if self.scale == "by_epochs":  # without a threshold (an invalid section): width
            return self.overfit_epochs is not None and epochs >= self.overfit_epochs
        return self.scale == "depth"


class ShrinkScaling(Strict):
    """TinyNet shrinking: resolution, width and depth factors of a base model."""

    type: Literal["shrink"]
    resolution: Searched = 1.0
    """r: image_size = floor(base_image_size * r)."""
    width: Searched = 1.0
    """w: the model's width_multiplier."""
    depth: Searched = 1.0
    """d: the model's depth_multiplier."""
    base_image_size: int | None = Field(None, ge=8, le=1024)
    """Resolution at r = 1; defaults to the base recipe's data.image_size."""

    _plain = field_validator("resolution", "width", "depth")(_no_conditions)


AnyStrategy = NoScaling | CompoundScaling | DepthFirstScaling | ShrinkScaling

Strategy = Annotated[AnyStrategy, Field(discriminator="type")]
"""Any scaling strategy (or none), told apart by its `type` key."""


class Constraints(Strict):
    """Limits on a trial's model, checked before it trains (over budget: PRUNED, never trained)."""

    max_gflops: float | None = Field(None, gt=0.0)
    """Most multiply-add GFLOPs of one image's forward pass at the evaluation resolution."""
    max_params_m: float | None = Field(None, gt=0.0)
    """Most parameters, in millions."""

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return self.max_gflops is not None or self.max_params_m is not None

    def violations(self, cost: dict[str, float]) -> list[str]:
        """What a model of this cost ({"gflops", "params_m"}) breaks, as readable phrases."""
        out = []
        if self.max_gflops is not None and cost["gflops"] > self.max_gflops:
            out.append(f"{cost['gflops']:.4g} GFLOPs > max_gflops {self.max_gflops:g}")
        if self.max_params_m is not None and cost["params_m"] > self.max_params_m:
            out.append(f"{cost['params_m']:.4g} M params > max_params_m {self.max_params_m:g}")
        return out


def _bounds(param: Searched) -> tuple[float, float]:
    if isinstance(param, CategoricalParam):
        numbers = [float(c) for c in param.choices if isinstance(c, int | float)]
        return min(numbers), max(numbers)
    if isinstance(param, FloatParam | IntParam):
        return float(param.low), float(param.high)
    return float(param), float(param)


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
    own_low, own_high = _bounds(strategy.gamma)
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


def resnet_rs_regularization(depth: int, image_size: int) -> dict[str, Any]:
    """The ResNet-RS paper's regularisation for a model size (arXiv:2103.07579).

    Its table fits three thresholds: RandAugment magnitude 10 up to 160 px, else 15;
    dropout 0.25, or 0.4 from 320 px; stochastic depth 0.1 from depth 200, else none.
    """
    return {
        "augment.randaugment_magnitude": 10.0 if image_size <= 160 else 15.0,
        "model.drop_rate": 0.4 if image_size >= 320 else 0.25,
        "model.drop_path_rate": 0.1 if depth >= 200 else 0.0,
    }


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
