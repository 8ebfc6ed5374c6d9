"""The report's Pareto-front section: the search's Pareto set and top-1-vs-cost fronts.

An axis every trial shares one value on gets a sentence instead of a front: a front over one
architecture only draws the accuracy's noise.
"""

from __future__ import annotations

from pathlib import Path

from rsearch.report import figures
from rsearch.report.data import SearchRecord
from rsearch.report.pareto import (
    COST_AXES,
    Axis,
    accuracy_front,
    measured,
    plotted_axes,
    same_value,
    search_front,
)
from rsearch.report.render import Section
from rsearch.report.sections import fmt

WHOLE = {"architecture": "architecture", "speed": "measured speed"}
"""What a sentence calls an axis kind when trials share every one of its axes."""


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
    return Section("Pareto front", paragraphs, figures=paths)


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
    """The trials on the axis' front."""
    numbers = ", ".join(f"#{n}" for n in sorted(accuracy_front(search, axis)))
    return f"Top-1 vs {axis.metric}: front {numbers}."
