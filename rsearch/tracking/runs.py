"""The MLflow runs of one search: found by their tags, created when missing, written idempotently.

A search is one parent run tagged `rsearch.search_id` (a digest of its run directory); each
trial is a child run tagged `mlflow.parentRunId` and `rsearch.trial_id`, and with the study
trial it runs (`rsearch.optuna_trial`). The tags are the whole trial-to-run mapping, so a new
process finds the runs again. There is one child run per study trial: a trial that takes over
a study trial another trial ran replaces that trial's run. Every write here can be repeated
without harm: params already logged are skipped, metric steps at or below the highest one
logged are skipped, tags and artifacts overwrite themselves with the same value, a replaced
run is deleted once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from rsearch.tracking.entities import MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH, chunks, tags_of

log = logging.getLogger(__name__)

TAG_SEARCH_ID = "rsearch.search_id"
TAG_RUN_DIR = "rsearch.run_dir"
TAG_ROLE = "rsearch.role"
TAG_TRIAL_ID = "rsearch.trial_id"
TAG_STUDY_TRIAL = "rsearch.optuna_trial"
"""The study trial (Optuna's number) a child run records: its key across Tune trials."""
TAG_LAST_STEP = "rsearch.last_step"
TAG_PARENT = "mlflow.parentRunId"
CHANGED_PREFIX = "rsearch.changed."
"""Tag prefix for a param whose value changed after it was logged (PBT perturbs a running
trial's recipe); MLflow params cannot change, tags can."""

TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})

Step = tuple[int, int, dict[str, float]]
"""One result: (step, timestamp in ms, metrics)."""


def normalise_run_dir(run_dir: str | Path) -> str:
    """A run directory as recorded: absolute, so relative and absolute spellings match."""
    text = str(run_dir)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def search_id(run_dir: str) -> str:
    """A search's key in MLflow: hex, so it needs no quoting in a filter string."""
    return hashlib.sha256(run_dir.encode()).hexdigest()[:20]


def artifact_location(root: str, experiment: str) -> str:
    """A folder of its own under `root` for an experiment's artifacts."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment).strip("-")[:60] or "experiment"
    return f"{root}/{slug}-{hashlib.sha256(experiment.encode()).hexdigest()[:8]}"


@dataclass
class RunState:
    """What this process knows of one run: enough to keep writes idempotent."""

    run_id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_keys: set[str] = field(default_factory=set)
    last_step: int = -1


class RunBook:
    """Finds, creates and writes the parent and child runs of one search.

    Args:
        client: The MLflow client.
        experiment: The experiment's name (created when missing).
        artifact_root: Where a new experiment's artifacts go; None for the store's default.
        run_dir: The search's run directory (identifies the parent run).
        run_name: The parent's name if it has to be created.
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment: str,
        artifact_root: str | None,
        run_dir: str,
        run_name: str,
    ):
        self._client = client
        self._experiment = experiment
        self._artifact_root = artifact_root
        self.run_dir = run_dir
        self.search_id = search_id(run_dir)
        self._run_name = run_name
        self._experiment_id: str | None = None
        self._parent: RunState | None = None
        self.children: dict[str, RunState] = {}
        self.parent_id: str | None = None
        """The parent run's id once seen; kept through `forget`."""

    @property
    def known_experiment_id(self) -> str | None:
        """The experiment's id if it was looked up already (no request)."""
        return self._experiment_id

    def forget(self) -> None:
        """Drop what this process knows of the runs; the next write looks them up again."""
        self._parent = None
        self.children = {}

    # -- finding and creating -------------------------------------------------------------

    @property
    def experiment_id(self) -> str:
        """The experiment's id, creating (or restoring a deleted) experiment when needed."""
        if self._experiment_id is None:
            self._experiment_id = self._find_or_create_experiment()
        return self._experiment_id

    def _find_or_create_experiment(self) -> str:
        found = self._client.get_experiment_by_name(self._experiment)
        if found is None:
            location = self._artifact_root and artifact_location(
                self._artifact_root, self._experiment
            )
            try:
                return str(self._client.create_experiment(self._experiment, location))
            except MlflowException:  # another process may have created it a moment ago
                found = self._client.get_experiment_by_name(self._experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            log.warning("restoring the deleted MLflow experiment %r", self._experiment)
            self._client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)

    def parent(self, start_ms: int | None = None) -> RunState:
        """The search's parent run: found by its tag, else created; its children are loaded."""
        if self._parent is None:
            run = self._find_parent() or self._client.create_run(
                self.experiment_id,
                start_time=start_ms,
                tags={TAG_SEARCH_ID: self.search_id, TAG_RUN_DIR: self.run_dir, TAG_ROLE: "search"},
                run_name=self._run_name,
            )
            self._parent = self._state(run)
            self.parent_id = run.info.run_id
            self.children = self._load_children(run.info.run_id)
        return self._parent

    def _find_parent(self) -> Run | None:
        runs = self._search(
            f"tags.`{TAG_SEARCH_ID}` = '{self.search_id}' and tags.`{TAG_ROLE}` = 'search'"
        )
        # Two parents can only come from two drivers racing on one run directory: keep the first.
        return min(runs, key=lambda r: r.info.start_time) if runs else None

    def _load_children(self, parent_id: str) -> dict[str, RunState]:
        children: dict[str, RunState] = {}
        for run in self._search(f"tags.`{TAG_PARENT}` = '{parent_id}'"):
            trial_id = run.data.tags.get(TAG_TRIAL_ID)
            if trial_id is not None and trial_id not in children:
                children[trial_id] = self._state(run)
        return children

    def _search(self, filter_string: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self._client.search_runs(
                [self.experiment_id],
                filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def child(
        self, trial_id: str, start_ms: int | None = None, study_trial: int | None = None
    ) -> RunState:
        """A trial's child run: found among the parent's children, else created.

        Args:
            trial_id: The trial (the run's name).
            start_ms: A new run's start time.
            study_trial: The study trial the trial runs, tagged on a new run. A new run
                replaces the child run of any other trial of the same study trial (see
                `_delete_runs_of`).
        """
        parent = self.parent()
        if trial_id not in self.children:
            tags = {
                TAG_PARENT: parent.run_id,
                TAG_SEARCH_ID: self.search_id,
                TAG_TRIAL_ID: trial_id,
                TAG_ROLE: "trial",
            }
            if study_trial is not None:
                self._delete_runs_of(study_trial)
                tags[TAG_STUDY_TRIAL] = str(study_trial)
            run = self._client.create_run(
                self.experiment_id, start_time=start_ms, tags=tags, run_name=trial_id
            )
            self.children[trial_id] = self._state(run)
        return self.children[trial_id]

    def _delete_runs_of(self, study_trial: int) -> None:
        """Delete the child runs of other trials that ran `study_trial`.

        A driver killed after a trial's run was made but before Tune's next experiment
        snapshot leaves that trial unknown to the resumed search, which gives its study trial
        to a new trial that trains it from scratch. The old run would stay behind, unfinished
        and never to be continued, its metrics from a discarded attempt: a dead trial beside
        the real one. Deleting it (before the new run exists, so a crash in between leaves
        nothing to undo) keeps one child run per study trial.
        """
        key = str(study_trial)
        for trial_id, state in list(self.children.items()):
            if state.tags.get(TAG_STUDY_TRIAL) == key:
                log.info(
                    "deleting MLflow run %s of trial %s: study trial %s now runs in another trial",
                    state.run_id,
                    trial_id,
                    key,
                )
                self._client.delete_run(state.run_id)
                del self.children[trial_id]

    def _state(self, run: Run) -> RunState:
        state = RunState(
            run_id=run.info.run_id,
            status=run.info.status,
            params=dict(run.data.params),
            tags=dict(run.data.tags),
            metric_keys=set(run.data.metrics),
        )
        state.last_step = self._last_step(state)
        return state

    def _last_step(self, state: RunState) -> int:
        if TAG_LAST_STEP in state.tags:
            return int(state.tags[TAG_LAST_STEP])
        # Runs written before the tag existed, or by hand: ask each metric's history.
        steps = [
            m.step
            for key in state.metric_keys
            for m in self._client.get_metric_history(state.run_id, key)
        ]
        return max(steps, default=-1)

    # -- writing --------------------------------------------------------------------------

    def log_params(self, state: RunState, params: Mapping[str, str]) -> None:
        """Log the params the run lacks; a changed value goes to a `rsearch.changed.` tag."""
        missing = {k: v for k, v in params.items() if k not in state.params}
        for batch in chunks(missing.items(), MAX_PARAMS_PER_BATCH):
            self._client.log_batch(state.run_id, params=[Param(k, v) for k, v in batch])
            state.params.update(batch)
        changed = {
            f"{CHANGED_PREFIX}{k}": v
            for k, v in params.items()
            if k in state.params and state.params[k] != v
        }
        self.set_tags(state, changed)

    def set_tags(self, state: RunState, tags: Mapping[str, Any]) -> None:
        """Set the tags whose values differ from what the run holds."""
        todo = {k: v for k, v in tags_of(tags).items() if state.tags.get(k) != v}
        for batch in chunks(todo.items(), MAX_PARAMS_PER_BATCH):
            self._client.log_batch(state.run_id, tags=[RunTag(k, v) for k, v in batch])
            state.tags.update(batch)

    def delete_tags(self, state: RunState, keys: Iterable[str]) -> None:
        """Remove tags the run holds (an old error once a trial is retried)."""
        for key in [k for k in keys if k in state.tags]:
            self._client.delete_tag(state.run_id, key)
            del state.tags[key]

    def log_steps(self, state: RunState, steps: Iterable[Step]) -> None:
        """Log results whose step is above the highest logged; the first of a repeated step wins.

        Each request carries whole steps and ends by moving the `rsearch.last_step` tag, so a
        new process knows where the run's history stops without reading it.
        """
        todo: dict[int, Step] = {}
        for row in steps:
            if row[0] > state.last_step and row[0] not in todo and row[2]:
                todo[row[0]] = row
        for batch in _step_batches([todo[s] for s in sorted(todo)]):
            metrics = [
                Metric(k, v, ts, step) for step, ts, values in batch for k, v in values.items()
            ]
            top = batch[-1][0]
            self._client.log_batch(
                state.run_id, metrics=metrics, tags=[RunTag(TAG_LAST_STEP, str(top))]
            )
            state.last_step = top
            state.tags[TAG_LAST_STEP] = str(top)
            state.metric_keys.update(m.key for m in metrics)

    def log_new_metrics(self, state: RunState, values: Mapping[str, float], ts: int) -> None:
        """Log metrics under keys the run has no value for, at its last step (final results)."""
        new = {k: v for k, v in values.items() if k not in state.metric_keys}
        step = max(state.last_step, 0)
        for batch in chunks(new.items(), MAX_METRICS_PER_BATCH):
            self._client.log_batch(state.run_id, metrics=[Metric(k, v, ts, step) for k, v in batch])
            state.metric_keys.update(k for k, _ in batch)

    def log_metrics_at(
        self, state: RunState, values: Mapping[str, float], ts: int, step: int
    ) -> None:
        """Log metrics at a given step, whatever the run already has."""
        for batch in chunks(values.items(), MAX_METRICS_PER_BATCH):
            self._client.log_batch(state.run_id, metrics=[Metric(k, v, ts, step) for k, v in batch])
            state.metric_keys.update(k for k, _ in batch)

    def log_artifact(self, state: RunState, local: str, artifact_path: str | None) -> None:
        """Upload a file or a directory; a path that no longer exists is reported and skipped."""
        path = Path(local)
        if path.is_dir():
            self._client.log_artifacts(state.run_id, str(path), artifact_path)
        elif path.is_file():
            self._client.log_artifact(state.run_id, str(path), artifact_path)
        else:
            log.warning("not logging %s to MLflow run %s: it no longer exists", path, state.run_id)

    def reopen(self, state: RunState) -> None:
        """Mark a run that had ended RUNNING again (a resumed search, a retried trial)."""
        if state.status in TERMINAL:
            self._client.update_run(state.run_id, status="RUNNING")
            state.status = "RUNNING"

    def terminate(self, state: RunState, status: str, end_ms: int) -> None:
        """End a run with FINISHED, FAILED or KILLED."""
        RunStatus.from_string(status)  # refuses a misspelt status before anything is sent
        self._client.set_terminated(state.run_id, status, end_time=end_ms)
        state.status = status


def _step_batches(rows: list[Step]) -> list[list[Step]]:
    """Whole steps per batch, within MLflow's metrics-per-request limit (one slot for the tag)."""
    batches: list[list[Step]] = []
    size = 0
    for row in rows:
        if not batches or size + len(row[2]) > MAX_METRICS_PER_BATCH - 1:
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += len(row[2])
    return batches
