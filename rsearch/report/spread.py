"""Whether a speed front's order is resolved: neighbouring front points against their spread.

A speed number is a median of repeated timings; the training core reports its relative spread
beside it. Two front points closer on the speed axis than the spread of their difference are
not ordered by the measurement: a report marks them "within spread". The spread of a
difference of two independent measurements is the root sum of squares of theirs,
sqrt(a^2 + b^2), taken in the axis' own unit (each spread is a percentage of its own value).
Trials without a spread (searches from before it was measured) are never marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rsearch.report.data import SearchRecord, TrialRecord
from rsearch.report.pareto import Axis, accuracy_front, measured

SPREAD_METRICS = {
    "infer_images_per_s": "infer_spread_pct",
    "infer_latency_ms": "infer_latency_spread_pct",
}
"""Speed metric -> the metric holding its relative spread (%), reported with it."""


@dataclass(frozen=True)
class FrontPoint:
    """One trial on a speed front, against the neighbouring front point its order is least
    sure of.

    Attributes:
        number: The trial's Optuna number.
        value: Its speed on the axis.
        spread_pct: Its measured relative spread (%), None when it has none.
        neighbour: The neighbouring front point compared with (None: this point or both its
            neighbours have no spread, or it has no neighbour).
        gap_pct: Distance to that neighbour, in % of the two values' mean.
        combined_pct: sqrt(a^2 + b^2) of the two spreads, in % of the same mean.
    """

    number: int
    value: float
    spread_pct: float | None
    neighbour: int | None = None
    gap_pct: float | None = None
    combined_pct: float | None = None

    @property
    def within_spread(self) -> bool:
        """Whether the gap to the neighbour is smaller than the spread of the difference."""
        if self.gap_pct is None or self.combined_pct is None:
            return False
        return self.gap_pct < self.combined_pct


def spread_of(trial: TrialRecord, axis: Axis) -> float | None:
    """The trial's relative spread (%) on a speed axis, or None (no spread measured)."""
    name = SPREAD_METRICS.get(axis.metric)
    return trial.metrics.get(name) if name else None


def has_spread(search: SearchRecord, axis: Axis) -> bool:
    """Whether any trial measured on the axis carries a spread."""
    return any(spread_of(t, axis) is not None for t in measured(search, axis))


def speed_front(search: SearchRecord, axis: Axis) -> list[FrontPoint]:
    """The axis' front points in axis order, each compared with its neighbours on the front."""
    front = accuracy_front(search, axis)
    trials = sorted(
        (t for t in measured(search, axis) if t.number in front),
        key=lambda t: (t.metrics[axis.metric], t.number),
    )
    points = [FrontPoint(t.number, t.metrics[axis.metric], spread_of(t, axis)) for t in trials]
    return [
        _compared(p, points[max(i - 1, 0) : i] + points[i + 1 : i + 2])
        for i, p in enumerate(points)
    ]


def within_spread(search: SearchRecord, axis: Axis) -> set[int]:
    """Trial numbers of the front points whose order on the axis the spread leaves open."""
    return {p.number for p in speed_front(search, axis) if p.within_spread}


def _compared(point: FrontPoint, neighbours: list[FrontPoint]) -> FrontPoint:
    # The neighbour with the least margin decides: one unresolved side leaves the order open.
    pairs = [(o.number, *m) for o in neighbours if (m := _gap_and_spread(point, o)) is not None]
    if not pairs:
        return point
    neighbour, gap, combined = min(pairs, key=lambda p: p[1] - p[2])
    return FrontPoint(point.number, point.value, point.spread_pct, neighbour, gap, combined)


def _gap_and_spread(a: FrontPoint, b: FrontPoint) -> tuple[float, float] | None:
    """(gap, combined spread), both in % of the two values' mean; None without both spreads."""
    if a.spread_pct is None or b.spread_pct is None:
        return None
    mean = (a.value + b.value) / 2
    if mean <= 0:
        return None
    combined = math.hypot(a.value * a.spread_pct, b.value * b.spread_pct) / 100
    return 100 * abs(a.value - b.value) / mean, 100 * combined / mean
