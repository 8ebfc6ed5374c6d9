"""The report's Pareto-front section: the search's Pareto set and top-1-vs-cost fronts.

An axis every trial shares one value on gets a sentence instead of a front (a front over one
architecture only draws the accuracy's noise); a speed front's points that are closer than
their measured spread are marked "within spread" in its table and drawn hollow.
"""

from __future__ import annotations

from pathlib import Path

from rsearch.report import figures
from rsearch.report.data import SearchRecord
from rsearch.report.pareto import (
    ACCURACY,
    COST_AXES,
    Axis,
    accuracy_front,
    measured,
    plotted_axes,
    same_value,
    search_front,
)
from rsearch.report.render import Section, Table
from rsearch.report.sections import fmt
from rsearch.report.spread import FrontPoint, has_spread, speed_front

WHOLE = {"architecture": "architecture", "speed": "measured speed"}
"""What a sentence calls an axis kind when trials share every one of its axes."""
SPREAD_NOTE = (
    "Speed fronts with their measured spread (relative, in % of each value): a front point is "
    "within spread when its gap to a neighbouring front point is smaller than the spread of "
    "the difference, the two spreads combined as sqrt(a^2 + b^2), both in % of the two values' "
    "mean. Their order on that axis is not resolved; the figures draw them hollow. Trials "
    "without a measured spread are not marked."
)
SPREAD_HEADER = [
    "front",
    "trial",
    "top-1 (%)",
    "value",
    "spread (%)",
    "neighbour",
    "gap (%)",
    "combined spread (%)",
    "order",
]


def pareto(search: SearchRecord, out_dir: Path) -> Section:
    """Top-1 against each measured cost, with the non-dominated trials highlighted."""
    paragraphs = []
    if search.spec.multi_objective:
        front = ", ".join(f"#{t.number}" for t in search_front(search)) or "none yet"
        metrics = " and ".join(o.metric for o in search.spec.objective)
        paragraphs.append(f"Pareto set over {metrics} (Optuna's best_trials): {front}.")
    paragraphs += same_value_sentences(search)
    axes = plotted_axes(search)
    if not any(measured(search, axis) for axis in COST_AXES):
        paragraphs.append("No completed trial has measured accuracy and speed yet.")
    paths = []
    for axis in axes:
        paragraphs.append(front_sentence(search, axis))
        paths.append(figures.pareto_figure(search, axis, out_dir / f"pareto_{axis.metric}.png"))
    table = spread_table(search, axes)
    if table is not None:
        paragraphs.append(SPREAD_NOTE)
    return Section("Pareto front", paragraphs, table, paths)


def same_value_sentences(search: SearchRecord) -> list[str]:
    """One sentence per axis kind whose axes the measured trials all share one value on."""
    sentences = []
    for kind, whole in WHOLE.items():
        axes = [a for a in COST_AXES if a.kind == kind and measured(search, a)]
        same = {a: v for a in axes if (v := same_value(search, a)) is not None}
        if not same:
            continue
        trials = max(len(measured(search, a)) for a in same)
        what = whole if len(same) == len(axes) else _joined([a.what for a in same], "and")
        values = ", ".join(f"{fmt(v)} {a.unit}" for a, v in same.items())
        nouns = _joined([a.noun for a in same], "or")
        sentences.append(f"All {trials} trials have the same {what} ({values}): no {nouns} front.")
    return sentences


def _joined(words: list[str], conjunction: str) -> str:
    return ", ".join(words[:-1]) + f" {conjunction} " + words[-1] if len(words) > 1 else words[0]


def front_sentence(search: SearchRecord, axis: Axis) -> str:
    """The axis' front, then the pairs of its points the measured spread does not order."""
    numbers = ", ".join(f"#{n}" for n in sorted(accuracy_front(search, axis)))
    sentence = f"Top-1 vs {axis.metric}: front {numbers}."
    open_pairs = sorted(
        {
            tuple(sorted((p.number, p.neighbour)))
            for p in speed_front(search, axis)
            if p.within_spread and p.neighbour is not None
        }
    )
    if open_pairs:
        pairs = ", ".join(f"#{a} and #{b}" for a, b in open_pairs)
        sentence += f" Within measured spread (order on {axis.metric} not resolved): {pairs}."
    return sentence


def spread_table(search: SearchRecord, axes: list[Axis]) -> Table | None:
    """Each speed front's points with their spread and gap (None: no trial measured one)."""
    rows = []
    for axis in axes:
        if not has_spread(search, axis):
            continue
        top1 = {t.number: t.metrics[ACCURACY] for t in measured(search, axis)}
        rows += [_spread_row(axis, p, top1[p.number]) for p in speed_front(search, axis)]
    return Table(SPREAD_HEADER, rows) if rows else None


def _spread_row(axis: Axis, point: FrontPoint, top1: float) -> list[str]:
    if point.gap_pct is None:
        order = "-"  # nothing to compare: no spread here or on either neighbour
    else:
        order = "within spread" if point.within_spread else "resolved"
    neighbour = f"#{point.neighbour}" if point.neighbour is not None else "-"
    return [
        axis.metric,
        f"#{point.number}",
        fmt(top1),
        f"{fmt(point.value)} {axis.unit}",
        fmt(point.spread_pct),
        neighbour,
        fmt(point.gap_pct),
        fmt(point.combined_pct),
        order,
    ]
