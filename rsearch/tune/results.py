"""Reading a run directory's outcome from its Optuna study: best trial(s) and their recipes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.errors import UserError
from rsearch.rundir import STUDY_FILE, load_run_spec, study_file
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import recipe_params
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params
from rsearch.tune.optuna_searcher import METRICS_ATTR
from rsearch.tune.searchers import journal_storage


@dataclass(frozen=True)
class TrialOutcome:
    """One finished trial: its number, state, searched values, objectives and metrics."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    metrics: dict[str, Any]
    recipe: Recipe

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON/YAML output."""
        return {
            "trial": self.number,
            "tune_trial_id": self.metrics.get("tune_trial_id"),
            "state": self.state,
            "values": self.values,
            "params": self.params,
            "metrics": {k: v for k, v in self.metrics.items() if k != "tune_trial_id"},
        }


def load_study(run_dir: Path, spec: SearchSpec) -> Any:
    """The run's Optuna study."""
    import optuna

    if not study_file(run_dir).is_file():
        raise UserError(f"{run_dir} has no Optuna study ({STUDY_FILE}); did the search start?")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=spec.name, storage=journal_storage(study_file(run_dir)))


def trial_outcomes(run_dir: Path) -> tuple[SearchSpec, list[TrialOutcome]]:
    """Every trial Optuna knows for the run, with its resolved recipe."""
    spec = load_run_spec(run_dir)
    study = load_study(run_dir, spec)
    outcomes = [
        TrialOutcome(
            number=t.number,
            state=t.state.name,
            params=dict(t.params),
            values=list(t.values) if t.values is not None else None,
            metrics={
                **t.user_attrs.get(METRICS_ATTR, {}),
                "tune_trial_id": t.user_attrs.get("tune_trial_id"),
            },
            recipe=apply_params(spec.base, recipe_params(t.params, spec.scaling, spec.base)),
        )
        for t in study.trials
    ]
    return spec, outcomes


def best_trials(run_dir: Path) -> tuple[SearchSpec, list[TrialOutcome]]:
    """The best trial (single objective) or the Pareto set (several objectives).

    Raises:
        UserError: When no trial has completed yet.
    """
    spec, outcomes = trial_outcomes(run_dir)
    study = load_study(run_dir, spec)
    complete = [o for o in outcomes if o.state == "COMPLETE"]
    if not complete:
        raise UserError(f"no trial of {run_dir} has completed yet")
    best_numbers = (
        [t.number for t in study.best_trials] if spec.multi_objective else [study.best_trial.number]
    )
    return spec, [o for o in outcomes if o.number in best_numbers]
