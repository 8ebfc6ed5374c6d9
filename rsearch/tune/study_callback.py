"""Keeping the Optuna study in step when no Searcher drives Tune (PBT populations)."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from rsearch.tune.optuna_searcher import OPTUNA_TRIAL, OptunaSearcher


class StudyCallback(Callback):
    """Forwards Tune's trial events to an OptunaSearcher used as the study's bookkeeper.

    PBT refuses search algorithms, so its population is proposed up front; each config
    carries its Optuna trial number, from which every event finds its trial again (also in
    a resumed run, where this callback's own state is stale).
    """

    def __init__(self, searcher: OptunaSearcher):
        self._searcher = searcher

    def _bind(self, trial: Any) -> str:
        self._searcher.adopt(trial.trial_id, int(trial.config[OPTUNA_TRIAL]))
        return str(trial.trial_id)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._bind(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._searcher.on_trial_result(self._bind(trial), result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._searcher.on_trial_complete(self._bind(trial), trial.last_result)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._searcher.on_trial_complete(self._bind(trial), trial.last_result, error=True)
