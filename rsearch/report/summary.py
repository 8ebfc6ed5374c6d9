"""What a finished search says in its last lines: the best trial and what it gained."""

from __future__ import annotations

from dataclasses import dataclass

from rsearch.rundir import Run, TrialView, best_trials, open_study, warm_start_trial


@dataclass(frozen=True)
class Outcome:
    """A search's answer.

    Attributes:
        best: The best trial, or the Pareto set.
        warm_start: The first warm-start recipe's trial, when it completed or was stopped.
        gain: best minus warm start on the (first) objective, signed so that positive is
            better; None for multi-objective searches or without a warm start that reported.
        warm_stopped_at: The epoch a scheduler stopped the warm start at (its value is then
            from that epoch), else None.
    """

    best: list[TrialView]
    warm_start: TrialView | None
    gain: float | None
    warm_stopped_at: int | None = None

    def gain_line(self, objective: str) -> str | None:
        """What the best trial gained over the warm start, in one line (None: no gain)."""
        if self.gain is None or self.warm_start is None:
            return None
        where = f"trial {self.warm_start.number}"
        if self.warm_stopped_at is not None:
            where += f", stopped by the scheduler after epoch {self.warm_stopped_at}"
        return f"gain over the warm-start recipe ({where}): {self.gain:+.4g} {objective}"


def search_outcome(run: Run) -> Outcome:
    """The best trial(s) of a search and their gain over its warm start.

    Raises:
        UserError: When the study does not exist or no trial has completed.
    """
    study = open_study(run.study_file, run.spec.name)
    best = best_trials(study, run.spec)
    warm = warm_start_trial(study, run.spec)
    gain = stopped_at = None
    if warm is not None and best[0].values and not run.spec.multi_objective:
        value = warm.values[0] if warm.values else None
        if value is None and warm.intermediate:
            stopped_at = max(warm.intermediate)
            value = warm.intermediate[stopped_at]
        if value is not None:
            sign = 1.0 if run.spec.objective[0].direction == "max" else -1.0
            gain = sign * (best[0].values[0] - value)
    return Outcome(best, warm, gain, stopped_at)
