"""The best-trial table of `rsearch best` and the end of `rsearch run`: readable at 80 columns.

The table is transposed: one row per searched field (and per value a scaling strategy
produced), one column per trial, so long parameter names are never cut. A Pareto set wider
than MAX_TRIAL_COLUMNS trials is shown as several tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from rsearch.rundir import TrialView
from rsearch.spec.scaling import written_paths
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import get_path

SCALING_ROWS = (
    "model.layers",
    "model.depth_multiplier",
    "model.width_multiplier",
    "data.image_size",
)
"""Recipe values a scaling search's table shows beside the searched ones."""
MAX_TRIAL_COLUMNS = 4
"""Trials side by side in one table: with a 28-character field column, 4 fit in 80."""


def cell(value: Any) -> str:
    """A value as the table shows it: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def table_rows(spec: SearchSpec, trials: Sequence[TrialView]) -> list[tuple[str, list[str]]]:
    """(field, one cell per trial) for the searched fields, scaled values and objectives.

    A scaling strategy's own knobs (alpha, gamma_band, ...) are Optuna parameters; the depth,
    width and resolution they produce are what a reader compares, so those rows follow.
    """
    scaled = [p for p in SCALING_ROWS if p in written_paths(spec.scaling)]
    recipes = [t.recipe(spec).model_dump(mode="json") for t in trials]
    rows = [(path, [cell(t.params.get(path)) for t in trials]) for path in spec.space]
    rows += [(path, [cell(get_path(r, path)) for r in recipes]) for path in scaled]
    for i, objective in enumerate(spec.objective):
        values = [cell(t.values[i]) if t.values else "-" for t in trials]
        rows.append((f"{objective.metric} ({objective.direction})", values))
    return rows


def best_tables(spec: SearchSpec, trials: Sequence[TrialView]) -> list[Table]:
    """The best trial, or the Pareto set in tables of at most MAX_TRIAL_COLUMNS trials."""
    title = "Pareto set" if spec.multi_objective else "best trial"
    rows = table_rows(spec, trials)
    tables = []
    for start in range(0, len(trials), MAX_TRIAL_COLUMNS):
        chunk = range(start, min(start + MAX_TRIAL_COLUMNS, len(trials)))
        table = Table(title=title if start == 0 else None, title_justify="left")
        table.add_column("field", overflow="fold")
        for i in chunk:
            table.add_column(f"trial {trials[i].number}", justify="right", overflow="fold")
        for name, cells in rows:
            table.add_row(name, *(cells[i] for i in chunk))
        tables.append(table)
    return tables
