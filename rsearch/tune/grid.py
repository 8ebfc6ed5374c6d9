"""Optuna's GridSampler for rsearch's ask-and-tell use.

GridSampler.after_trial calls `study.stop()` once the grid is exhausted, which Optuna allows
only inside `study.optimize`; under ask-and-tell (the Tune searcher, `rsearch sample`, refused
proposals) the `tell` of the last grid point would raise. rsearch ends a search at
`search.num_trials` instead, so the stop is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna import Study
from optuna.samplers import GridSampler
from optuna.trial import FrozenTrial, TrialState


class AskTellGridSampler(GridSampler):
    """A GridSampler whose finished trials never call `study.stop()`."""

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Nothing to do: the search stops at num_trials, not when the grid runs out."""
