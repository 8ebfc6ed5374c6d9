"""Sending queued tracking records to MLflow, in order, through outages.

Records name runs by search and trial id (`records`); sending resolves the names through tags
(`runs.RunBook`), and sending a record twice changes nothing, so a crash between a send and
marking it sent is harmless.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from rsearch.redact import redact_text
from rsearch.rundir.checkpoints import inside_run
from rsearch.tracking.outbox import Outbox, Pending
from rsearch.tracking.records import (
    Artifact,
    EndSearch,
    EndTrial,
    Metrics,
    OpenSearch,
    OpenTrial,
    Record,
    SearchArtifacts,
    Unreadable,
)
from rsearch.tracking.runs import RunBook, RunState, Step
from rsearch.tracking.store import http_limits, is_transient

log = logging.getLogger(__name__)

TAG_PRUNED = "rsearch.pruned"
TAG_ERROR = "rsearch.error"
TAG_CHECKPOINT = "rsearch.checkpoint"
"""A trial's checkpoint path, for people to read: never read back as a path to upload."""
CHECKPOINT_FOLDER = "checkpoint"
TAG_BEST = "rsearch.best"
TAG_BEST_TRIAL = "rsearch.best_trial_id"
TAG_BEST_RUN = "rsearch.best_run_id"
TAG_DROPPED = "rsearch.dropped_records"
TAG_NOTE = "mlflow.note.content"
"""The run description, which the MLflow UI renders as Markdown: it carries the link to the
best child run."""


class Sender:
    """Appends records to the on-disk queue and sends them when due.

    Args:
        book: The search's runs.
        outbox: The search's queue.
        upload_best_checkpoints: Whether `end_search` uploads the best trials' checkpoints.
        checkpoint_root: The search's run directory: checkpoints are uploaded from inside it
            only (symlinks resolved), None uploads none.
        flush_interval: Seconds epoch results are held so several go in one request.
        retry_interval: Seconds between tries while MLflow is unreachable.
        limits: MLflow HTTP retry and timeout settings for these requests.
        where: The tracking URI, secrets masked, for messages.
    """

    def __init__(
        self,
        book: RunBook,
        outbox: Outbox,
        upload_best_checkpoints: bool,
        checkpoint_root: Path | None,
        flush_interval: float,
        retry_interval: float,
        limits: Mapping[str, str],
        where: str,
    ):
        self.book = book
        self.outbox = outbox
        self._best_checkpoints = upload_best_checkpoints
        self._checkpoint_root = checkpoint_root
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._limits = limits
        self._where = where
        self._offline_since: float | None = None
        self._last_send = 0.0
        self.dropped = 0
        """Records given up: refused by a full queue, or refused by MLflow as invalid."""

    def submit(self, record: Record, droppable: bool = False) -> None:
        """Queue a record; send the queue now unless it is held for batching or an outage.

        Args:
            record: The record.
            droppable: An epoch result: held up to `flush_interval`, and refused when the
                queue is full. Other records are sent at once (when MLflow is reachable).
        """
        if not self.outbox.append(record, droppable=droppable):
            self.dropped += 1
            if self.dropped == 1:
                log.warning("MLflow queue %s is full: epoch results are dropped", self.outbox.path)
            return
        self._send_if_due(urgent=not droppable)

    def tick(self) -> None:
        """Send held-back records if they are due."""
        if len(self.outbox):
            self._send_if_due(urgent=False)

    def flush(self, attempts: int, wait: float) -> bool:
        """Send everything queued, trying `attempts` times with doubling waits between.

        Returns:
            Whether the queue is empty.
        """
        for attempt in range(attempts):
            if self._send():
                return True
            if attempt + 1 < attempts:
                time.sleep(wait * 2**attempt)
        log.warning(
            "MLflow at %s is unreachable: %d records stay queued in %s and are sent by the "
            "next recorder of this search",
            self._where,
            len(self.outbox),
            self.outbox.path,
        )
        return False

    def _send_if_due(self, urgent: bool) -> None:
        now = time.monotonic()
        if self._offline_since is not None:
            due = now - self._last_send >= self._retry_interval
        else:
            due = urgent or now - self._last_send >= self._flush_interval
        if due:
            self._send()

    def _send(self) -> bool:
        """Send queued records in order until done or the store is unreachable."""
        self._last_send = time.monotonic()
        units = _units(self.outbox.pending())
        sent = 0
        with http_limits(self._limits):
            for unit in units:
                count = len(unit) if isinstance(unit, list) else 1
                try:
                    self._apply(unit)
                # Broad on purpose: no failure to record may end the search, and the stores
                # raise many types (MLflow's, requests', SQLAlchemy's, a cloud SDK's for an
                # s3:// or gs:// artifact root). What may pass is retried later; anything else
                # costs this unit and is logged with its cause (`_give_up`), so a fault shows.
                except Exception as exc:
                    if is_transient(exc):
                        self._went_offline(exc)
                        return False
                    self._give_up(count, _op(unit), exc)
                self.outbox.mark_sent(count)
                sent += count
        self._came_back(sent)
        return True

    def _went_offline(self, exc: BaseException) -> None:
        # A request can succeed on the server and still fail here (a lost response): look the
        # runs up again before the next try rather than trust what this process believes.
        self.book.forget()
        if self._offline_since is None:
            self._offline_since = time.monotonic()
            log.warning(
                "MLflow at %s is unreachable (%s); queueing records in %s and retrying every %g s",
                self._where,
                redact_text(str(exc))[:300],
                self.outbox.path,
                self._retry_interval,
            )

    def _came_back(self, sent: int) -> None:
        if self._offline_since is not None:
            away = time.monotonic() - self._offline_since
            log.warning("MLflow is reachable again after %.0f s; %d records sent", away, sent)
            self._offline_since = None

    def _give_up(self, count: int, op: str, exc: BaseException) -> None:
        self.dropped += count
        if isinstance(exc, MlflowException):
            log.error(
                "MLflow refused %d %r record(s); skipping them: %s",
                count,
                op,
                redact_text(str(exc)),
            )
            return
        # Not a refusal by MLflow, maybe a fault: say where it was raised. Not the whole
        # traceback, whose lines could show a secret the message has masked.
        log.error(
            "could not send %d %r record(s) to MLflow; skipping them: %s (raised at %s)",
            count,
            op,
            redact_text(f"{type(exc).__name__}: {exc}"),
            _origin(exc),
        )

    def _skip_unreadable(self, line: Unreadable) -> None:
        # Later records must not wait behind one this version can never send, nor the search
        # end over it; it is counted with the dropped records, which the parent run is tagged
        # with, and said here with its text, so nothing is lost without a trace.
        self.dropped += 1
        log.warning(
            "skipping line %d of the MLflow queue %s: not a record this rsearch version can "
            "read (written by another version, or damaged): %s; the line: %s",
            line.line,
            self.outbox.path,
            line.reason,
            line.text,
        )

    def _apply(self, unit: Unit) -> None:
        match unit:
            case list():
                self._apply_metrics(unit)
            case OpenSearch():
                self._apply_open_search(unit)
            case OpenTrial():
                self._apply_open_trial(unit)
            case EndTrial():
                self._apply_end_trial(unit)
            case EndSearch():
                self._apply_end_search(unit)
            case SearchArtifacts():
                self._apply_search_artifacts(unit)
            case Unreadable():
                self._skip_unreadable(unit)

    def _apply_metrics(self, records: list[Metrics]) -> None:
        by_trial: dict[str, list[Step]] = {}
        for r in records:
            by_trial.setdefault(r.trial, []).append((r.step, r.ts, r.values))
        for trial_id, steps in by_trial.items():
            try:
                state = self.book.child(trial_id)
                self.book.log_steps(state, steps)
            except MlflowException as exc:
                # One trial's bad values must not cost the other trials in the batch theirs.
                if is_transient(exc):
                    raise
                self._give_up(len(steps), "metrics", exc)

    def _apply_open_search(self, r: OpenSearch) -> None:
        parent = self.book.parent(start_ms=r.ts)
        self.book.reopen(parent)
        self.book.log_params(parent, r.params)
        self.book.set_tags(parent, r.tags)
        self._log_artifacts(parent, r.artifacts)

    def _apply_open_trial(self, r: OpenTrial) -> None:
        child = self.book.child(r.trial, start_ms=r.ts, study_trial=r.study_trial)
        if child.status != "RUNNING":
            # A retried or resumed trial: the last attempt's outcome no longer holds.
            self.book.delete_tags(child, [TAG_ERROR, TAG_PRUNED])
            self.book.reopen(child)
        self.book.log_params(child, r.params)
        self.book.set_tags(child, r.tags)
        self._log_artifacts(child, r.artifacts)

    def _apply_end_trial(self, r: EndTrial) -> None:
        child = self.book.child(r.trial)
        self.book.log_new_metrics(child, r.final, r.ts)
        self.book.set_tags(child, r.tags)
        self._log_artifacts(child, self._safe_checkpoints(r.artifacts))
        self.book.terminate(child, r.status, r.ts)

    def _apply_end_search(self, r: EndSearch) -> None:
        book = self.book
        parent = book.parent()
        best = [book.child(t) for t in r.best]
        # An extended search can end with another best trial than it first did.
        for trial_id, child in book.children.items():
            if trial_id not in r.best:
                book.delete_tags(child, [TAG_BEST])
        for trial_id, child in zip(r.best, best, strict=True):
            book.set_tags(child, {TAG_BEST: "true"})
            # From the run directory's own record (`EndSearch.checkpoints`), never from a
            # tag: whoever may write tags on the server must not choose what is uploaded.
            path = r.checkpoints.get(trial_id)
            if self._best_checkpoints and path:
                self._log_artifacts(child, self._safe_checkpoints([(path, CHECKPOINT_FOLDER)]))
        tags: dict[str, Any] = {TAG_DROPPED: r.dropped or None, **r.tags}
        if best:
            tags[TAG_BEST_TRIAL] = ",".join(r.best)
            tags[TAG_BEST_RUN] = ",".join(c.run_id for c in best)
            tags[TAG_NOTE] = self._best_note(r.best, best)
        book.set_tags(parent, tags)
        # The search is over, so nothing runs any more: a trial the driver never closed (it
        # died, or a resume left the trial unfinished) must not show as running forever.
        for child in book.children.values():
            if child.status == "RUNNING":
                book.terminate(child, "KILLED", r.ts)
        # The step is the trial count, so a resumed search's new best is a new point.
        book.log_metrics_at(parent, r.metrics, r.ts, step=len(book.children))
        self._log_artifacts(parent, r.artifacts)
        book.terminate(parent, r.status, r.ts)

    def _apply_search_artifacts(self, r: SearchArtifacts) -> None:
        self._log_artifacts(self.book.parent(), r.artifacts)

    def _safe_checkpoints(self, items: list[Artifact]) -> list[Artifact]:
        """items without the checkpoints outside the run directory (checked again at upload:
        a symlink may have been swapped since the record was queued)."""
        kept = []
        for local, folder in items:
            if folder == CHECKPOINT_FOLDER:
                inside = self._checkpoint_root and inside_run(self._checkpoint_root, local)
                if not inside:
                    continue
                local = str(inside)
            kept.append((local, folder))
        return kept

    def _log_artifacts(self, state: RunState, items: list[Artifact]) -> None:
        for local, artifact_path in items:
            self.book.log_artifact(state, local, artifact_path)

    def _best_note(self, trial_ids: list[str], runs: list[RunState]) -> str:
        exp = self.book.experiment_id
        links = [
            f"[{t}](#/experiments/{exp}/runs/{c.run_id})"
            for t, c in zip(trial_ids, runs, strict=True)
        ]
        return "Best trial: " + ", ".join(links)


Unit = list[Metrics] | Record | Unreadable
"""What is sent at once: consecutive epoch results (batched per trial), or one other entry."""


def _units(pending: list[Pending]) -> list[Unit]:
    """The queue's entries in sending units, in order."""
    units: list[Unit] = []
    for entry in pending:
        last = units[-1] if units else None
        if isinstance(entry, Metrics) and isinstance(last, list):
            last.append(entry)
        elif isinstance(entry, Metrics):
            units.append([entry])
        else:
            units.append(entry)
    return units


def _op(unit: Unit) -> str:
    if isinstance(unit, list):
        return "metrics"
    return "unreadable" if isinstance(unit, Unreadable) else unit.op


def _origin(exc: BaseException) -> str:
    """Where an exception was raised: `file:line in function` of its innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"
