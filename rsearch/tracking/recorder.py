"""SearchRecorder: the whole search in MLflow, written from the Tune driver alone.

Every event becomes a record that is appended to an on-disk queue first and sent from there
(`sender.Sender`), so an unreachable tracking server costs the search nothing: records wait on
disk, are tried again every `retry_interval` seconds and at the end, and a driver that dies
leaves them for the next recorder of the same run directory (a resumed search) to send.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from mlflow import MlflowClient

from rsearch.redact import redact, redact_text
from rsearch.rundir.checkpoints import read_checkpoints, record_checkpoint
from rsearch.settings import resolve_tracking_uri
from rsearch.tracking.entities import MAX_TAG_VALUE, cap, json_safe, numeric, params_of
from rsearch.tracking.outbox import Outbox
from rsearch.tracking.provenance import search_tags
from rsearch.tracking.records import (
    Artifact,
    EndSearch,
    EndTrial,
    Metrics,
    OpenSearch,
    OpenTrial,
    SearchArtifacts,
    TrialStatus,
)
from rsearch.tracking.runs import RunBook, normalise_run_dir
from rsearch.tracking.sender import (
    CHECKPOINT_FOLDER,
    TAG_CHECKPOINT,
    TAG_ERROR,
    TAG_PRUNED,
    Sender,
)
from rsearch.tracking.staging import Staging
from rsearch.tracking.store import HTTP_LIMITS, artifact_root, ensure_store

log = logging.getLogger(__name__)

CheckpointPolicy = Literal["none", "best", "all"]

SUPPRESS_URL_PRINTING = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
"""MLflow's switch for the run URLs it prints as runs end."""
TAG_SEARCHED = "rsearch.searched"


def _now_ms() -> int:
    return int(time.time() * 1000)


class SearchRecorder:
    """Records one search: a parent run, a child run per trial, queued through outages.

    Call it from the Tune driver only (one process), in this order: `start_search`, then per
    trial `trial_started`, `trial_result` per epoch and `trial_ended`, then `end_search`.
    `tick` sends results held back for batching; call it from a frequent driver hook.

    Args:
        tracking_uri: MLflow tracking URI; None resolves it like `resolve_tracking_uri`.
        experiment: MLflow experiment name (created when missing).
        state_dir: A directory of the search's own (e.g. `<run_dir>/mlflow`) for the queue of
            unsent records and the files logged as artifacts.
        checkpoints: Which trials' checkpoints are uploaded: none, the best trial(s), or all.
        flush_interval: Seconds results are held so several go in one request.
        retry_interval: Seconds between tries while the tracking server is unreachable.
        flush_attempts: Tries of `flush` and `end_search` to send what is queued.
        flush_wait: Seconds before the second try; doubled before each further one.
        max_queue_bytes: Size of the on-disk queue above which epoch results are dropped
            (counted, and the count tagged on the parent); run starts and ends are always kept.
        http_limits: MLflow HTTP retry and timeout settings for the recorder's requests.

    Raises:
        UserError: When a SQLite store cannot be created.
    """

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        state_dir: Path,
        checkpoints: CheckpointPolicy = "best",
        *,
        flush_interval: float = 2.0,
        retry_interval: float = 15.0,
        flush_attempts: int = 4,
        flush_wait: float = 2.0,
        max_queue_bytes: int = 64 * 1024**2,
        http_limits: Mapping[str, str] = HTTP_LIMITS,
    ):
        if checkpoints not in get_args(CheckpointPolicy):
            raise ValueError(f"checkpoints must be one of {get_args(CheckpointPolicy)}")
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        ensure_store(self.tracking_uri)  # before any trial starts: SQLite creation must not race
        if redact_text(self.tracking_uri) != self.tracking_uri:
            # MLflow prints "View run ... at: <tracking URI>/#/..." as each run ends, the
            # URI's credential and all; nothing in rsearch reads those lines.
            os.environ[SUPPRESS_URL_PRINTING] = "true"
        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment = experiment
        self._state_dir = Path(state_dir)
        self._staging = Staging(self._state_dir)
        self._checkpoints = checkpoints
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._flush_attempts = flush_attempts
        self._flush_wait = flush_wait
        self._max_queue_bytes = max_queue_bytes
        self._http_limits = dict(http_limits)
        self._sender: Sender | None = None
        self._run_dir: Path | None = None
        self._lock = threading.RLock()

    # -- public API -----------------------------------------------------------------------

    @property
    def parent_run_id(self) -> str | None:
        """The parent run's id once it has reached MLflow, else None."""
        return self._sender.book.parent_id if self._sender else None

    @property
    def experiment_id(self) -> str | None:
        """The experiment's id once known, else None."""
        return self._sender.book.known_experiment_id if self._sender else None

    @property
    def queued(self) -> int:
        """Records waiting on disk to be sent."""
        return len(self._sender.outbox) if self._sender else 0

    @property
    def dropped(self) -> int:
        """Records given up: refused by a full queue, or refused by MLflow as invalid."""
        return self._sender.dropped if self._sender else 0

    def start_search(
        self,
        run_dir: str | Path,
        name: str,
        settings: Mapping[str, Any],
        spec_resolved: Mapping[str, Any],
        spec_written: Path | None = None,
        ray_address: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Open the search's parent run, or reopen the one already tagged with `run_dir`.

        Args:
            run_dir: The search's run directory; it identifies the parent run across resumes.
            name: The spec's name; a new parent is named `<name>-<YYYYmmdd-HHMMSS>`.
            settings: Search settings (objective, sampler, scheduler, trials, resources...),
                nested; logged flattened as params, secrets masked.
            spec_resolved: The resolved spec, logged as `spec/resolved.yaml`.
            spec_written: The spec file as written, logged as `spec/<its name>`.
            ray_address: The Ray cluster the search runs on (None: an embedded Ray).
            tags: More parent tags.

        Returns:
            The parent run's id, or None while the tracking server is unreachable.
        """
        with self._lock:
            run_name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            book = RunBook(
                self._client,
                self._experiment,
                artifact_root(self.tracking_uri),
                normalise_run_dir(run_dir),
                run_name,
            )
            # Checkpoints are uploaded from inside a local run directory only (its own record
            # of them, `rsearch.rundir.checkpoints`); a URI run directory uploads none.
            local = book.run_dir if "://" not in book.run_dir else None
            self._run_dir = Path(local) if local else None
            outbox = Outbox(self._state_dir, f"queue-{book.search_id}", self._max_queue_bytes)
            if len(outbox):
                log.info("sending %d MLflow records left by an earlier driver", len(outbox))
            self._sender = Sender(
                book,
                outbox,
                upload_best_checkpoints=self._checkpoints == "best",
                checkpoint_root=self._run_dir,
                flush_interval=self._flush_interval,
                retry_interval=self._retry_interval,
                limits=self._http_limits,
                where=redact_text(self.tracking_uri),
            )
            self._sender.submit(
                OpenSearch(
                    ts=_now_ms(),
                    params=params_of(redact(dict(settings))),
                    tags=search_tags(spec_resolved, spec_written, ray_address, tags or {}),
                    artifacts=self._staging.spec(spec_resolved, spec_written),
                )
            )
            return self.parent_run_id

    def trial_started(
        self,
        trial_id: str,
        recipe: Mapping[str, Any],
        searched: Mapping[str, Any],
        study_trial: int | None = None,
    ) -> None:
        """Open a trial's child run, or continue it (a resumed search, a retried trial).

        Args:
            trial_id: The trial's id (the child run's name).
            recipe: The trial's whole resolved recipe, nested; logged flattened as params.
            searched: Space paths (dotted) and the values sampled for them.
            study_trial: The study trial (Optuna's number) it runs. A trial that takes over a
                study trial another trial ran (a resumed search adopting a proposal its killed
                driver had handed out) gets a new child run that replaces the other's, so
                there is one child run per study trial.
        """
        with self._lock:
            sender = self._require_search()
            safe_recipe = redact(dict(recipe))
            params = params_of(safe_recipe)
            for path, value in params_of(redact(dict(searched))).items():
                params.setdefault(path, value)
            recipe_file = self._staging.yaml(f"trials/{trial_id}/recipe.yaml", safe_recipe)
            sender.submit(
                OpenTrial(
                    trial=trial_id,
                    ts=_now_ms(),
                    params=params,
                    tags={TAG_SEARCHED: cap(",".join(searched), MAX_TAG_VALUE) or None},
                    artifacts=[(recipe_file, None)],
                    study_trial=study_trial,
                )
            )

    def trial_result(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        """Record one epoch's metrics; non-numeric entries are ignored.

        Results are held up to `flush_interval` seconds and sent with others in one request.
        A step at or below the highest step the run already has is skipped when sent.

        Args:
            trial_id: The trial.
            metrics: The result (its numeric entries become metrics).
            step: The epoch.
        """
        values = numeric(metrics)
        if not values:
            return
        with self._lock:
            sender = self._require_search()
            record = Metrics(trial=trial_id, step=int(step), ts=_now_ms(), values=values)
            sender.submit(record, droppable=True)

    def trial_ended(
        self,
        trial_id: str,
        status: TrialStatus,
        final_metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
        pruned: bool = False,
        checkpoint: Path | None = None,
    ) -> None:
        """Close a trial's child run.

        Args:
            trial_id: The trial.
            status: FINISHED, KILLED (stopped by a scheduler or the user) or FAILED.
            final_metrics: The trial's last metrics; logged as `metrics.json`, and as metrics
                for keys no epoch reported.
            error: Why it failed (tag `rsearch.error`, secrets masked).
            pruned: The scheduler stopped it early (tag `rsearch.pruned=true`).
            checkpoint: Its final checkpoint (file or directory), uploaded per the policy;
                recorded in the run directory, refused (with a warning) outside it.
        """
        if status not in get_args(TrialStatus):
            raise ValueError(f"status must be one of {get_args(TrialStatus)}, not {status!r}")
        with self._lock:
            sender = self._require_search()
            final = numeric(final_metrics or {})
            summary = {"trial_id": trial_id, "status": status, "metrics": json_safe(final)}
            if error:
                summary["error"] = redact_text(error)
            tags: dict[str, str] = {}
            if pruned:
                tags[TAG_PRUNED] = "true"
            if error:
                tags[TAG_ERROR] = cap(redact_text(error), MAX_TAG_VALUE)
            summary_file = self._staging.json(f"trials/{trial_id}/metrics.json", summary)
            artifacts: list[Artifact] = [(summary_file, None)]
            kept = self._keep_checkpoint(trial_id, checkpoint) if checkpoint else None
            if kept is not None:
                tags[TAG_CHECKPOINT] = str(kept)  # information only: never read back
                if self._checkpoints == "all":
                    artifacts.append((str(kept), CHECKPOINT_FOLDER))
            sender.submit(
                EndTrial(
                    trial=trial_id,
                    ts=_now_ms(),
                    status=status,
                    final=final,
                    tags=tags,
                    artifacts=artifacts,
                )
            )

    def end_search(
        self,
        best_trial_ids: Sequence[str] = (),
        best_metrics: Mapping[str, Any] | None = None,
        status: TrialStatus = "FINISHED",
        artifacts: Sequence[Path] = (),
        tags: Mapping[str, str] | None = None,
    ) -> bool:
        """Close the parent run with the best trial(s), then send everything queued.

        Args:
            best_trial_ids: The best trial, or the Pareto set of a multi-objective search.
            best_metrics: Metrics logged on the parent (the best trial's, by their own names,
                and the search's compute totals).
            status: FINISHED, or KILLED / FAILED for an interrupted or broken search.
            artifacts: More files for the parent (e.g. a report).
            tags: More tags for the parent (why the search stopped).

        Returns:
            Whether every record reached MLflow (else they stay queued on disk).
        """
        with self._lock:
            sender = self._require_search()
            known = read_checkpoints(self._run_dir) if self._run_dir else {}
            checkpoints = {t: str(known[t]) for t in best_trial_ids if t in known}
            sender.submit(
                EndSearch(
                    ts=_now_ms(),
                    status=status,
                    best=list(best_trial_ids),
                    metrics=numeric(best_metrics or {}),
                    checkpoints=checkpoints,
                    artifacts=[(str(p), None) for p in artifacts],
                    dropped=sender.dropped,
                    tags=dict(tags or {}),
                )
            )
            return self.flush()

    def log_search_artifacts(self, files: Sequence[Path], artifact_path: str | None = None) -> None:
        """Queue files (report plots, tables) for the parent run.

        Args:
            files: Files or directories.
            artifact_path: Folder inside the run's artifacts.
        """
        with self._lock:
            sender = self._require_search()
            items: list[Artifact] = [(str(f), artifact_path) for f in files]
            sender.submit(SearchArtifacts(ts=_now_ms(), artifacts=items))

    def tick(self) -> None:
        """Send held-back records if they are due; cheap enough to call on every driver step."""
        with self._lock:
            if self._sender is not None:
                self._sender.tick()

    def flush(self, attempts: int | None = None, wait: float | None = None) -> bool:
        """Send everything queued, trying `attempts` times with doubling waits between.

        Args:
            attempts: Tries; default `flush_attempts`.
            wait: Seconds before the second try; default `flush_wait`.

        Returns:
            Whether the queue is empty; if not, its records stay on disk for a later recorder
            of the same run directory (e.g. `rsearch resume`) to send.
        """
        with self._lock:
            if self._sender is None:
                return True
            return self._sender.flush(
                self._flush_attempts if attempts is None else attempts,
                self._flush_wait if wait is None else wait,
            )

    def _keep_checkpoint(self, trial_id: str, checkpoint: Path) -> Path | None:
        """Record a trial's checkpoint in the run directory; None when it is refused."""
        if self._run_dir is None:
            log.warning("not recording checkpoint %s: the run directory is not local", checkpoint)
            return None
        return record_checkpoint(self._run_dir, trial_id, checkpoint)

    def _require_search(self) -> Sender:
        if self._sender is None:
            raise RuntimeError("start_search() must be called before recording trials")
        return self._sender
