"""Which searched parameters mattered: Optuna's fANOVA importance, per objective."""

from __future__ import annotations

from dataclasses import dataclass

from rsearch.report.data import SearchRecord

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

    complete = search.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS:
        return Importances(
            {},
            f"parameter importance needs at least {MIN_TRIALS} completed trials; "
            f"this search has {len(complete)}",
        )
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
                search.study,
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
