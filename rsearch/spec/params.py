"""Search-space parameters: one float, int or categorical distribution per Recipe path.

Shaped after Optuna's distributions (one FloatDistribution with low/high/log/step rather than
five range types), plus `when:` conditions that make a parameter exist only for some values of
categorical parameters (define-by-run spaces).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rsearch.spec.base import Strict

Choice = str | int | float | bool | None


class _Param(Strict):
    when: dict[str, Choice | list[Choice]] = Field(default_factory=dict)
    """Sample this parameter only when each named categorical parameter takes one of the values."""

    def allowed_when(self) -> dict[str, list[Choice]]:
        """The conditions with every right-hand side as a list of allowed values."""
        return {k: v if isinstance(v, list) else [v] for k, v in self.when.items()}


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got low={low}")
    if step is not None:
        if log:
            raise ValueError("step and log cannot be combined (Optuna refuses it)")
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        steps = (high - low) / step
        if not math.isclose(steps, round(steps), rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"step {step} does not divide the range [{low}, {high}]")


class FloatParam(_Param):
    """A real number in [low, high], optionally log-uniform or on a grid of `step`."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _valid_range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def contains(self, value: Any) -> bool:
        """Whether value is a number this distribution can produce."""
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


class IntParam(_Param):
    """An integer in [low, high], optionally log-uniform or every `step`."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _valid_range(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self

    def contains(self, value: Any) -> bool:
        """Whether value is an integer this distribution can produce."""
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )


class CategoricalParam(_Param):
    """One of a list of values (strings, numbers, booleans or null)."""

    type: Literal["categorical"]
    choices: list[Choice] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[Choice]) -> list[Choice]:
        seen = [repr(c) for c in choices]
        dups = sorted({s for s in seen if seen.count(s) > 1})
        if dups:
            raise ValueError(f"choices repeat {', '.join(dups)}")
        return choices

    def contains(self, value: Any) -> bool:
        """Whether value is one of the choices."""
        # True == 1 in Python; a boolean must match a boolean choice, not a number.
        return any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices
        )


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
"""Any one search-space parameter, told apart by its `type` key."""
