"""Speed–accuracy trade-offs: the search's own Pareto set and 2-D accuracy-vs-cost fronts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rsearch.report.data import SearchRecord, TrialRecord
from rsearch.spec.metric_names import natural_direction
from rsearch.spec.metrics import BY_NAME, Direction

ACCURACY = "val_top1"
SAME_REL_TOL = 1e-6
"""Values of one axis this close (relative) are the same: one architecture, not a trade-off."""


@dataclass(frozen=True)
class Axis:
    """A measured cost or speed a report plots accuracy against (from the metrics table)."""

    metric: str
    kind: Literal["architecture", "speed"]
    """What the axis tells apart: 'architecture' (params, FLOPs) or 'speed' (measured)."""
    noun: str
    """How a sentence names its front ('no parameter front')."""
    what: str
    """How a sentence names its value ('the same parameter count')."""
    unit: str
    """The short unit a sentence gives its value in ('11.2 M params')."""
    log: bool = False

    @property
    def label(self) -> str:
        """Axis label with its unit."""
        return BY_NAME[self.metric].label

    @property
    def direction(self) -> Direction:
        """Which way is better."""
        return natural_direction(self.metric)


COST_AXES = (
    Axis("infer_images_per_s", "speed", "throughput", "throughput", "images/s", log=True),
    Axis("infer_latency_ms", "speed", "latency", "latency", "ms", log=True),
    Axis("params_m", "architecture", "parameter", "parameter count", "M params", log=True),
    Axis("gflops", "architecture", "FLOP", "FLOP count", "GFLOPs", log=True),
)
"""The axes of ResNet-RS's and EfficientNet's trade-off plots, in the order a report shows them."""


def non_dominated(
    points: Mapping[int, Sequence[float]], directions: Sequence[Direction]
) -> set[int]:
    """Keys of the points no other point dominates (at least as good on all, better on one)."""

    def as_loss(values: Sequence[float]) -> list[float]:
        return [-v if d == "max" else v for v, d in zip(values, directions, strict=True)]

    losses = {key: as_loss(values) for key, values in points.items()}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return {k for k, v in losses.items() if not any(dominates(o, v) for o in losses.values())}


def search_front(search: SearchRecord) -> list[TrialRecord]:
    """The search's answer: Optuna's Pareto set (several objectives) or its best trial."""
    if not search.in_state("COMPLETE"):
        return []
    if search.spec.multi_objective:
        numbers = {t.number for t in search.study.best_trials}
    else:
        numbers = {search.study.best_trial.number}
    return [t for t in search.trials if t.number in numbers]


def measured(search: SearchRecord, axis: Axis) -> list[TrialRecord]:
    """Completed trials that measured both accuracy and the axis (early-stopped ones did not
    train their full budget, so their accuracy would not be comparable)."""
    return [
        t for t in search.in_state("COMPLETE") if ACCURACY in t.metrics and axis.metric in t.metrics
    ]


def accuracy_front(search: SearchRecord, axis: Axis) -> set[int]:
    """Trial numbers on the accuracy-vs-axis front (ties on both count as non-dominated)."""
    trials = measured(search, axis)
    points = {t.number: (t.metrics[ACCURACY], t.metrics[axis.metric]) for t in trials}
    return non_dominated(points, ("max", axis.direction))


def same_value(search: SearchRecord, axis: Axis) -> float | None:
    """The one value every measured trial has on the axis (None: they differ, or fewer than
    two trials measured it). A front over one value would only draw the accuracy's noise."""
    values = [t.metrics[axis.metric] for t in measured(search, axis)]
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    return low if math.isclose(low, high, rel_tol=SAME_REL_TOL) else None


def plotted_axes(search: SearchRecord) -> list[Axis]:
    """The cost axes completed trials measured, and on which they differ."""
    return [a for a in COST_AXES if measured(search, a) and same_value(search, a) is None]
