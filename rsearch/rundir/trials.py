"""Trials as every reader sees them: one typed view of an Optuna trial, and the best ones.

`rsearch best`, reports and tracking read trials through `TrialView`; none of them looks
at Optuna's user attributes by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rsearch.errors import UserError
from rsearch.rundir.study import METRICS_ATTR, REJECTED_ATTR, TUNE_TRIAL_ID_ATTR
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import recipe_params
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params

if TYPE_CHECKING:
    import optuna


class NoCompletedTrial(UserError):
    """A search without a completed trial has no best trial yet."""


@dataclass(frozen=True)
class TrialView:
    """One Optuna trial of a search.

    Attributes:
        number: Optuna's trial number (the label everywhere).
        state: COMPLETE, PRUNED, FAIL, RUNNING or WAITING.
        params: The sampled values, by Optuna parameter name (space paths, `scaling.*`).
        values: Objective values (COMPLETE trials only).
        metrics: Final summary metrics.
        tune_trial_id: The Tune trial that ran it (None: never ran, e.g. refused).
        intermediate: Epoch -> objective value (single-objective searches).
        rejected: Why the proposal was refused before training, if it was.
    """

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    metrics: dict[str, float] = field(default_factory=dict)
    tune_trial_id: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    rejected: str | None = None

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> TrialView:
        """The view of a frozen Optuna trial."""
        attrs = trial.user_attrs
        tune_id = attrs.get(TUNE_TRIAL_ID_ATTR)
        return cls(
            number=trial.number,
            state=trial.state.name,
            params=dict(trial.params),
            values=list(trial.values) if trial.values is not None else None,
            metrics={k: float(v) for k, v in (attrs.get(METRICS_ATTR) or {}).items()},
            tune_trial_id=str(tune_id) if tune_id is not None else None,
            intermediate={int(k): float(v) for k, v in trial.intermediate_values.items()},
            rejected=attrs.get(REJECTED_ATTR),
        )

    def recipe_params(self, spec: SearchSpec) -> dict[str, Any]:
        """The recipe values the trial set: its params with scaling resolved to recipe paths."""
        return recipe_params(self.params, spec.scaling, spec.base)

    def recipe(self, spec: SearchSpec) -> Recipe:
        """The whole recipe the trial trained."""
        return apply_params(spec.base, self.recipe_params(spec))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON/YAML output."""
        return {
            "trial": self.number,
            "tune_trial_id": self.tune_trial_id,
            "state": self.state,
            "values": self.values,
            "params": self.params,
            "metrics": self.metrics,
        }


def trial_views(study: optuna.Study) -> list[TrialView]:
    """Every trial of the study, in number order."""
    return [TrialView.of(t) for t in study.get_trials(deepcopy=False)]


def best_trials(study: optuna.Study, spec: SearchSpec) -> list[TrialView]:
    """The best trial (single objective) or the Pareto set (several objectives).

    Raises:
        NoCompletedTrial: When no trial has completed yet.
    """
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise NoCompletedTrial(f"no trial of search {spec.name!r} has completed yet")
    best = study.best_trials if spec.multi_objective else [study.best_trial]
    return [TrialView.of(t) for t in best]


def warm_start_trial(study: optuna.Study, spec: SearchSpec) -> TrialView | None:
    """The first warm-start trial that completed or was stopped after an epoch, if any.

    A scheduler stops a warm start like any other trial: the recipe the search started from
    then lost at a rung, which is an answer too (see `report.summary`).
    """
    if not spec.search.warm_start:
        return None
    for trial in trial_views(study)[: len(spec.search.warm_start)]:
        if trial.state == "COMPLETE" or (trial.state == "PRUNED" and trial.intermediate):
            return trial
    return None
