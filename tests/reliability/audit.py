"""Reading back what a search recorded, for the reliability tests: runs, steps, trials."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from rsearch.tracking import find_search_run
from rsearch.tracking.runs import TAG_PARENT
from rsearch.tracking.sender import TAG_PRUNED

MAX_RUNS = 50_000
"""Enough for any search here: MLflow's search pages at 1,000 runs by default."""


def search_runs(run_dir: Path, uri: str) -> tuple[Any, list[Any]]:
    """The parent run recorded for run_dir in the store at uri, and all its child runs."""
    parent = find_search_run(run_dir, uri)
    assert parent is not None, f"no parent run for {run_dir} in {uri}"
    children = MlflowClient(uri).search_runs(
        [parent.info.experiment_id],
        f"tags.`{TAG_PARENT}` = '{parent.info.run_id}'",
        max_results=MAX_RUNS,
    )
    return parent, children


END_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}
"""A child run's status for its study trial's final state (a scheduler's stop is KILLED)."""


def check_ended(trials: list[Any], by_number: dict[str, Any]) -> None:
    """Each study trial's child run (by study trial number) ended as the trial did."""
    for t in trials:
        child = by_number[str(t.number)]
        assert child.info.status == END_STATUS[t.state.name], (t.number, t.state, child.info.status)
        pruned = child.data.tags.get(TAG_PRUNED) == "true"
        assert pruned == (t.state.name == "PRUNED"), (t.number, child.data.tags)


def repeated_steps(db: Path) -> list[tuple[str, str, int, int]]:
    """Every (run, metric, step) logged more than once in an MLflow sqlite store, with its count.

    Read from the store's own table rather than run by run through the client: a search of a
    thousand trials has thousands of metric histories, and this is one query.
    """
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT run_uuid, key, step, COUNT(*) FROM metrics "
            "GROUP BY run_uuid, key, step HAVING COUNT(*) > 1"
        ).fetchall()
    return [(str(r), str(k), int(s), int(n)) for r, k, s, n in rows]


def logged_steps(db: Path, run_id: str, key: str) -> list[int]:
    """The steps at which a run logged a metric, in order (repeats kept)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step",
            (run_id, key),
        ).fetchall()
    return [int(s) for (s,) in rows]
