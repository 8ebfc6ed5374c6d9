"""Reading a run directory's study and best trials in tests, through rsearch.rundir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from rsearch.rundir import TrialView, best_trials, open_run, open_study, trial_views
from rsearch.spec import SearchSpec


def load_study(run_dir: Path, spec: Any = None) -> optuna.Study:
    """The run's Optuna study (spec is accepted for symmetry with the driver; unused)."""
    run = open_run(run_dir)
    return open_study(run.study_file, run.spec.name)


def run_best(run_dir: Path) -> tuple[SearchSpec, list[TrialView]]:
    """The run's spec and its best trial(s)."""
    run = open_run(run_dir)
    return run.spec, best_trials(load_study(run_dir), run.spec)


def run_trials(run_dir: Path) -> tuple[SearchSpec, list[TrialView]]:
    """The run's spec and every trial."""
    run = open_run(run_dir)
    return run.spec, trial_views(load_study(run_dir))
