"""Which searched parameters mattered: Optuna's fANOVA importance, per objective."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rsearch.report.data import SearchRecord

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

MIN_TRIALS = 3
"""Completed trials below which importances would only restate the noise of a few points."""
SEED = 0
"""fANOVA's random forest is seeded, so the same study gives the same report."""


@dataclass(frozen=True)
class Importances:
    """Normalised importance of each parameter for each objective, or why there is none."""

    by_objective: dict[str, dict[str, float]]
    """Objective metric -> parameter -> importance (summing to 1), most important first."""
    note: str = ""
    """Why importances are missing, when they are."""


def param_importances(search: SearchRecord) -> Importances:
    """fANOVA importances of the searched parameters on each objective.

    Returns a note instead when the study cannot support them: fewer than MIN_TRIALS completed
    trials, or fewer than two parameters shared by all of them.
    """
    import optuna
    from optuna.search_space import intersection_search_space

    study = search.study
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS:
        return Importances(
            {},
            f"parameter importance needs at least {MIN_TRIALS} completed trials; "
            f"this search has {len(complete)}",
        )
    study, complete = _on_widest_ranges(study, complete)
    shared = intersection_search_space(complete)
    if len(shared) < 2:
        names = ", ".join(shared) or "none"
        return Importances(
            {},
            f"parameter importance compares two or more parameters every completed trial "
            f"searched; this search has {len(shared)} ({names})",
        )
    result: dict[str, dict[str, float]] = {}
    unranked: list[str] = []
    for i, objective in enumerate(search.spec.objective):
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=SEED)
        try:
            result[objective.metric] = optuna.importance.get_param_importances(
                study,
                evaluator=evaluator,
                params=sorted(shared),
                target=lambda t, i=i: t.values[i],  # type: ignore[misc]
            )
        except RuntimeError:  # fANOVA's "zero total variance": every trial scored the same
            unranked.append(objective.metric)
    note = (
        f"no importance for {', '.join(unranked)}: every completed trial scored the same"
        if unranked
        else ""
    )
    return Importances(result, note)


def _on_widest_ranges(
    study: optuna.Study, complete: list[optuna.trial.FrozenTrial]
) -> tuple[optuna.Study, list[optuna.trial.FrozenTrial]]:
    """The completed trials with one range per parameter: the widest any of them used.

    An extended search (`rsearch extend`) may have narrowed a range; Optuna leaves a parameter
    whose range changed out of importances, so its trials are ranked on the widest range, which
    holds every value drawn. The study itself is returned when no range changed.
    """
    import optuna

    widest: dict[str, BaseDistribution] = {}
    for trial in complete:
        for name, dist in trial.distributions.items():
            widest[name] = _union(widest.get(name, dist), dist)
    if all(t.distributions == {n: widest[n] for n in t.distributions} for t in complete):
        return study, complete
    widened = optuna.create_study(directions=study.directions)
    widened.add_trials(
        [
            optuna.trial.create_trial(
                params=t.params,
                distributions={n: widest[n] for n in t.params},
                values=t.values,
                state=optuna.trial.TrialState.COMPLETE,
            )
            for t in complete
        ]
    )
    return widened, widened.trials


def _union(a: BaseDistribution, b: BaseDistribution) -> BaseDistribution:
    """The range holding both numeric ranges of one scale and step; else a (left out)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    for kind in (FloatDistribution, IntDistribution):
        if isinstance(a, kind) and isinstance(b, kind) and (a.log, a.step) == (b.log, b.step):
            low, high = min(a.low, b.low), max(a.high, b.high)
            return kind(low, high, log=a.log, step=a.step)  # type: ignore[arg-type]
    return a
