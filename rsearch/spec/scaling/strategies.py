"""The scaling section of a spec: one strategy of the seed papers, told apart by `type`.

A strategy's parameters are fixed numbers or searched distributions; rsearch.spec.scaling.values
turns their values into the recipe values they scale.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rsearch.spec.base import Strict
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam, Param
from rsearch.spec.scaling.resnet_rs import RESNET_RS_LAYERS

Searched = float | Param
"""A strategy parameter: a fixed number, or a distribution the sampler searches."""


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
        lows, highs = zip(*(bounds(p) for p in (self.alpha, self.beta, self.gamma)), strict=True)
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


def bounds(param: Searched) -> tuple[float, float]:
    """The smallest and largest value a strategy parameter can take."""
    if isinstance(param, CategoricalParam):
        numbers = [float(c) for c in param.choices if isinstance(c, int | float)]
        return min(numbers), max(numbers)
    if isinstance(param, FloatParam | IntParam):
        return float(param.low), float(param.high)
    return float(param), float(param)
