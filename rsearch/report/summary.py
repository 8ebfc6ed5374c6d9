"""What a finished search says in its last lines: the best trial and what it gained."""

from __future__ import annotations

from dataclasses import dataclass

from rsearch.rundir import Run, TrialView, best_trials, open_study, warm_start_trial


@dataclass(frozen=True)
class Outcome:
    """A search's answer.

    Attributes:
        best: The best trial, or the Pareto set.
        warm_start: The first warm-start recipe's trial, when it completed.
        gain: best minus warm start on the (first) objective, signed so that positive is
            better; None for multi-objective searches or without a completed warm start.
    """

    best: list[TrialView]
    warm_start: TrialView | None
    gain: float | None


def search_outcome(run: Run) -> Outcome:
    """The best trial(s) of a search and their gain over its warm start.

    Raises:
        UserError: When the study does not exist or no trial has completed.
    """
    study = open_study(run.study_file, run.spec.name)
    best = best_trials(study, run.spec)
    warm = warm_start_trial(study, run.spec)
    gain = None
    if warm is not None and warm.values and best[0].values and not run.spec.multi_objective:
        sign = 1.0 if run.spec.objective[0].direction == "max" else -1.0
        gain = sign * (best[0].values[0] - warm.values[0])
    return Outcome(best, warm, gain)
