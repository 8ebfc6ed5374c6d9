"""1,000 trivial trials through rsearch's own driver: every one recorded once, memory measured.

CI runs 300 (every trial recorded once holds at any count; 300 is still 150 rounds of the two
slots); `RSEARCH_FULL_FIGURES=1` runs the 1,000 docs/reliability.md quotes.

The search machinery is the real one (`make_tuner`: Optuna TPE searcher in the run's journal
study, ASHA, compute ledger and stopper, the MLflow tracking callback recording to a sqlite
store); only the trial body is a trivial function (benchmarks/many_trials.py, which runs the
same at 10,000 trials). Nothing is timed against a bar: the wall time and the driver's peak
resident memory are recorded as figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest

from benchmarks.many_trials import run_many
from rsearch.tracking.runs import TAG_STUDY_TRIAL
from tests.reliability.audit import check_ended, repeated_steps, search_runs
from tests.reliability.figures import full_size, record
from tests.study_helpers import load_study

pytestmark = pytest.mark.slow

TRIALS = 1000 if full_size() else 300
RSS_SANITY_MB = 4096
"""Far above what the driver needs (the 10,000-trial goal is 2 GB): only a runaway fails it."""


def test_many_trials_are_each_recorded_once(ray_2cpu: None, tmp_path: Path) -> None:
    figures = run_many(TRIALS, tmp_path)

    trials = load_study(figures.run_dir).trials
    states = Counter(t.state for t in trials)
    assert len(trials) == TRIALS, states
    assert all(t.state.is_finished() for t in trials), states
    assert states[optuna.trial.TrialState.COMPLETE] >= 1  # ASHA lets the best ones finish

    uri = figures.spec.tracking.uri
    assert uri is not None
    parent, children = search_runs(figures.run_dir, uri)
    assert parent.info.status == "FINISHED"
    by_number = {c.data.tags.get(TAG_STUDY_TRIAL): c for c in children}
    assert len(children) == len(by_number) == TRIALS
    assert set(by_number) == {str(t.number) for t in trials}, "one child run per study trial"
    check_ended(trials, by_number)
    assert repeated_steps(tmp_path / "mlflow.db") == []
    assert figures.peak_rss_mb < RSS_SANITY_MB

    record(
        f"{TRIALS:,} trials through one driver",
        "trivial trials through rsearch's Tuner, searcher, ASHA, ledger and MLflow callback",
        TRIALS,
        "nothing",
        wall_s=round(figures.wall_s, 1),
        trials_per_s=round(figures.trials_per_s, 2),
        driver_rss_peak_mb=round(figures.peak_rss_mb),
        driver_rss_start_mb=round(figures.start_rss_mb),
    )
