"""The Tune callback that records a search in MLflow from the driver (never from workers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune import Callback

from rsearch.spec.search import SearchSpec
from rsearch.tune.optuna_searcher import PARAMS
from rsearch.tune.trainable import TrialSetup, pointed_checkpoint

log = logging.getLogger(__name__)

STATE_DIR = "mlflow"
"""Folder of the run directory holding the MLflow outbox and staged artifacts."""


class TrackingCallback(Callback):
    """Turns Tune's trial events into SearchRecorder calls: parent run, child runs, metrics.

    Args:
        spec: The search.
        run_dir: Its run directory (names the parent run across resumes).
        spec_path: The spec file as written (logged on the parent), if any.
        ray_address: The cluster the search runs on, None for the embedded Ray.
        tracking_uri: Overrides the spec's and the environment's tracking URI.
    """

    def __init__(
        self,
        spec: SearchSpec,
        run_dir: Path,
        spec_path: Path | None = None,
        ray_address: str | None = None,
        tracking_uri: str | None = None,
    ):
        self._spec = spec
        self._run_dir = run_dir
        self._spec_path = spec_path if spec_path and spec_path.is_file() else None
        self._ray_address = ray_address
        self._uri = tracking_uri or spec.tracking.uri
        self._setup = TrialSetup.from_spec(spec, str(run_dir / "train"))
        self._recorder: Any = None

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Open (or reopen, on resume) the search's parent run."""
        from rsearch.tracking import SearchRecorder, resolved_spec, search_settings

        self._recorder = SearchRecorder(
            self._uri,
            self._spec.tracking.experiment or self._spec.name,
            self._run_dir / STATE_DIR,
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
        params = trial.config.get(PARAMS, {})
        recipe = self._setup.recipe(params).model_dump(mode="json")
        self._recorder.trial_started(trial.trial_id, recipe, params)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._recorder.trial_result(trial.trial_id, result, step=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        finished = int(result.get("epoch", 0)) >= self._spec.budget_epochs
        self._recorder.trial_ended(
            trial.trial_id,
            "FINISHED" if finished else "KILLED",
            final_metrics=result,
            pruned=not finished,
            checkpoint=_local_checkpoint(trial),
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._recorder.trial_ended(
            trial.trial_id,
            "FAILED",
            final_metrics=trial.last_result or {},
            error=_error_text(trial),
            checkpoint=_local_checkpoint(trial),
        )

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Close the parent with the best trial(s) from the study, and send what is queued."""
        from rsearch.tune.results import best_trials

        best_ids: list[str] = []
        best_metrics: dict[str, Any] = {}
        try:
            _, best = best_trials(self._run_dir)
            best_ids = [str(t.metrics.get("tune_trial_id")) for t in best]
            best_metrics = {f"best_{k}": v for k, v in best[0].metrics.items()}
        except Exception as e:  # no completed trial: the parent still closes
            log.warning("no best trial to record: %s", e)
        if not self._recorder.end_search(best_ids, best_metrics):
            log.warning(
                "MLflow unreachable: %d records stay queued in %s and are sent on resume",
                self._recorder.queued,
                self._run_dir / STATE_DIR,
            )

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the experiment; the recorder holds a client and threads.
        return {**self.__dict__, "_recorder": None}


def _local_checkpoint(trial: Any) -> Path | None:
    path = pointed_checkpoint(trial.checkpoint)
    return Path(path) if path and "://" not in path and Path(path).exists() else None


def _error_text(trial: Any) -> str:
    error_file = getattr(trial, "error_file", None)
    if error_file and Path(error_file).is_file():
        lines = [ln for ln in Path(error_file).read_text().splitlines() if ln.strip()]
        return lines[-1] if lines else "failed"
    return "failed"
