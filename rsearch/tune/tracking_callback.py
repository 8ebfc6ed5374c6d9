"""The Tune callback that records a search in MLflow from the driver (never from workers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from ray.tune import Callback

from rsearch.errors import UserError
from rsearch.rundir import (
    SPEC_AS_WRITTEN,
    Run,
    TrialBook,
    best_trials,
    open_study,
    read_compute,
)
from rsearch.spec.metric_names import reported_only
from rsearch.tracking.compute import compute_on_parent
from rsearch.tune.kill_points import kill_point
from rsearch.tune.optuna_searcher import OPTUNA_TRIAL, PARAMS
from rsearch.tune.trainable import TrialSetup, pointed_checkpoint

log = logging.getLogger(__name__)


class TrackingCallback(Callback):
    """Turns Tune's trial events into SearchRecorder calls: parent run, child runs, metrics.

    Args:
        run: The search's run directory (names the parent run across resumes); its manifest
            names the MLflow store, resolved once when the search started.
    """

    def __init__(self, run: Run):
        self._run = run
        self._spec = run.spec
        self._run_dir = run.path
        spec_copy = run.path / SPEC_AS_WRITTEN
        self._spec_path = spec_copy if spec_copy.is_file() else None
        address = run.manifest.ray_address
        self._ray_address = None if address == "embedded" else address
        self._setup = TrialSetup.from_spec(run.spec, run.train_root)
        self._recorder: Any = None
        self._book: TrialBook | None = None

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Open (or reopen, on resume) the search's parent run."""
        from rsearch.tracking import SearchRecorder, resolved_spec, search_settings
        from rsearch.tracking.reports import run_tracking_uri

        # Resolved here, not kept: Tune pickles its callbacks into the run directory.
        self._recorder = SearchRecorder(
            run_tracking_uri(self._run),
            self._run.experiment_name,
            self._run.tracking_state,
            checkpoints=self._spec.tracking.checkpoints,
        )
        self._recorder.start_search(
            self._run_dir,
            self._spec.name,
            settings=search_settings(self._spec),
            spec_resolved=resolved_spec(self._spec),
            spec_written=self._spec_path,
            ray_address=self._ray_address,
        )

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._recorder is not None:
            self._recorder.tick()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Open the trial's child run, keyed by the study trial it runs (see `_study_trial`)."""
        kill_point("trial_started")
        params = trial.config.get(PARAMS, {})
        recipe = self._setup.recipe(params).model_dump(mode="json")
        self._recorder.trial_started(trial.trial_id, recipe, params, _study_trial(trial))
        kill_point("child_opened")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        step = int(result.get("epoch", 0))
        if step == 1:
            kill_point("first_result")
        self._recorder.trial_result(trial.trial_id, reported_only(result), step=step)
        if step == 1:
            kill_point("first_result_recorded")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        told = self._study_state(trial)
        if told in (TrialState.COMPLETE, TrialState.PRUNED):
            # The study is the record best and report read: a trial it already holds as
            # finished (told before a driver was killed) ends in MLflow the same way.
            finished = told == TrialState.COMPLETE
        else:
            finished = int(result.get("epoch", 0)) >= self._spec.budget_epochs
        self._recorder.trial_ended(
            trial.trial_id,
            "FINISHED" if finished else "KILLED",
            final_metrics=reported_only(result),
            pruned=not finished,
            checkpoint=_local_checkpoint(trial),
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._recorder.trial_ended(
            trial.trial_id,
            "FAILED",
            final_metrics=reported_only(trial.last_result or {}),
            error=_error_text(trial),
            checkpoint=_local_checkpoint(trial),
        )

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Close the parent with the best trial(s) from the study, and send what is queued."""
        best_ids: list[str] = []
        best_metrics: dict[str, Any] = {}
        try:
            best = best_trials(open_study(self._run.study_file, self._spec.name), self._spec)
            best_ids = [t.tune_trial_id for t in best if t.tune_trial_id]
            best_metrics = {f"best_{k}": v for k, v in best[0].metrics.items()}
        except UserError as e:  # no study or no completed trial: the parent still closes
            log.warning("no best trial to record: %s", e)
        totals, tags = compute_on_parent(read_compute(self._run_dir))
        if not self._recorder.end_search(best_ids, {**best_metrics, **totals}, tags=tags):
            log.warning(
                "MLflow unreachable: %d records stay queued in %s and are sent on resume",
                self._recorder.queued,
                self._run.tracking_state,
            )

    def _study_state(self, trial: Any) -> TrialState | None:
        """The state the study holds for the trial's study trial (None: no study or trial).

        A trial whose last epoch was reported after Tune's last snapshot before a killed
        driver is restored at an earlier result; its Train run, already at its last epoch,
        trains nothing more, so Tune's last result stops short of the budget while the study
        (told before the kill) has the trial complete. The reverse happens too: the study told
        PRUNED, and Tune's restored trial then reports its last epoch.
        """
        number = _study_trial(trial)
        if number is None or not self._run.study_file.is_file():
            return None
        if self._book is None:  # one reader for the search: each read syncs only what is new
            self._book = TrialBook(open_study(self._run.study_file, self._spec.name))
        return self._book.state(number)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the experiment; the recorder holds a client and threads.
        return {**self.__dict__, "_recorder": None, "_book": None}


def _study_trial(trial: Any) -> int | None:
    """The Optuna trial a Tune trial runs, from its config (None: a config without it).

    Only the recorder's first opening of a child run uses it, so the donor's number a PBT
    exploit copies into a running trial's config changes nothing.
    """
    number = trial.config.get(OPTUNA_TRIAL)
    valid = isinstance(number, int) and not isinstance(number, bool) and number >= 0
    return number if valid else None


def _local_checkpoint(trial: Any) -> Path | None:
    path = pointed_checkpoint(trial.checkpoint)
    return Path(path) if path and "://" not in path and Path(path).exists() else None


def _error_text(trial: Any) -> str:
    error_file = getattr(trial, "error_file", None)
    if error_file and Path(error_file).is_file():
        lines = [ln for ln in Path(error_file).read_text().splitlines() if ln.strip()]
        return lines[-1] if lines else "failed"
    return "failed"
