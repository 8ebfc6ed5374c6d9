"""The channel between a trial driver and its resident Ray Train workers.

A trial driver (a Tune actor, reused from trial to trial) keeps one Ray Train run alive and
posts each trial to it as a job; the run's workers take the jobs one after another (see
`rsearch.tune.resident`). This small actor carries, per job: the job itself, rank 0's
epoch results (metrics and the persisted checkpoint), the driver's decision after each
epoch (train on, or stop: Tune's scheduler has spoken) and the job's end.

Every wait is bounded by a timeout and retried by the caller, so a dead peer never hangs the
other side for long; the actor runs its calls in threads (`max_concurrency`) so that blocking
waits do not queue each other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Event = tuple[str, Any, Any]
"""("result", metrics, checkpoint URI or None) or ("end", error text or None, None)."""


@dataclass
class Job:
    """One trial's training, as the driver posts it."""

    seq: int
    """The board's running number: a job is taken by every rank once, in order."""
    trial_id: str
    recipe: dict[str, Any]
    resume_from: str | None
    """The checkpoint to start from: Tune's at first, then each one rank 0 persists (so a
    worker group Ray Train restarts continues where the job was)."""
    token: str
    """Unique per start of a trial: names its checkpoints (`<trial>-<token>-e<epoch>`)."""
    events: list[Event] = field(default_factory=list)
    decisions: dict[int, bool] = field(default_factory=dict)
    answers: dict[int, bool] = field(default_factory=dict)
    """The decision each epoch's ranks were given (fixed by the first to ask)."""
    stopped: bool = False
    ended: bool = False


class TrialBoard:
    """Jobs, results and decisions shared by one driver and one Train run's workers."""

    def __init__(self) -> None:
        """An empty board."""
        self._cond = threading.Condition()
        self._jobs: dict[int, Job] = {}
        self._next_seq = 1
        self._closed = False

    # --- the driver's side -------------------------------------------------------------------

    def post_job(
        self, trial_id: str, recipe: dict[str, Any], resume_from: str | None, token: str
    ) -> int:
        """Queue a trial's training; returns its job number."""
        with self._cond:
            # Ended jobs are done with (their driver read the end): keep the board small.
            self._jobs = {s: j for s, j in self._jobs.items() if not j.ended}
            seq = self._next_seq
            self._next_seq += 1
            self._jobs[seq] = Job(seq, trial_id, recipe, resume_from, token)
            self._cond.notify_all()
            return seq

    def next_event(self, seq: int, index: int, timeout: float) -> Event | None:
        """The job's index-th event (0-based), waiting up to timeout; None if none yet."""
        with self._cond:
            job = self._jobs[seq]
            self._cond.wait_for(lambda: len(job.events) > index, timeout=timeout)
            return job.events[index] if len(job.events) > index else None

    def decide(self, seq: int, epoch: int, go: bool) -> None:
        """After the job's epoch (1-based): train the next one (go) or stop here."""
        with self._cond:
            self._jobs[seq].decisions.setdefault(epoch, go)
            self._cond.notify_all()

    def stop(self, seq: int) -> None:
        """Stop the job at its next epoch boundary (Tune stopped the trial or its driver left)."""
        with self._cond:
            self._jobs[seq].stopped = True
            self._cond.notify_all()

    def close(self) -> None:
        """End the Train run: workers leave their loop once their current job is over."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # --- the workers' side -------------------------------------------------------------------

    def take_job(self, after: int, timeout: float) -> dict[str, Any] | None:
        """The first unended job numbered above `after`, waiting up to timeout.

        Returns {"close": True} once the board is closed and no job is left, None on timeout.
        """

        def pending() -> Job | None:
            later = (j for s, j in sorted(self._jobs.items()) if s > after and not j.ended)
            return next(later, None)

        with self._cond:
            self._cond.wait_for(lambda: self._closed or pending() is not None, timeout=timeout)
            job = pending()
            if job is None:
                return {"close": True} if self._closed else None
            return {
                "seq": job.seq,
                "trial_id": job.trial_id,
                "recipe": job.recipe,
                "resume_from": job.resume_from,
                "token": job.token,
            }

    def post_result(self, seq: int, metrics: dict[str, Any], checkpoint: str | None) -> None:
        """Rank 0's epoch: its metrics and the checkpoint Ray Train persisted (or None)."""
        with self._cond:
            job = self._jobs[seq]
            job.events.append(("result", metrics, checkpoint))
            if checkpoint is not None:
                job.resume_from = checkpoint
            self._cond.notify_all()

    def wait_decision(self, seq: int, epoch: int, timeout: float) -> bool | None:
        """The driver's decision after an epoch: True train on, False stop, None not yet.

        The first rank to get an answer fixes it for every rank (a stop arriving later, or
        out of order with the go, must not split the ranks).
        """
        with self._cond:
            job = self._jobs[seq]
            known = job.answers
            self._cond.wait_for(
                lambda: epoch in known or job.stopped or epoch in job.decisions, timeout=timeout
            )
            if epoch not in known and (job.stopped or epoch in job.decisions):
                known[epoch] = False if job.stopped else job.decisions[epoch]
            return known.get(epoch)

    def post_end(self, seq: int, error: str | None) -> None:
        """The job is over: trained to its end, stopped, or failed with error."""
        with self._cond:
            job = self._jobs[seq]
            if not job.ended:
                job.ended = True
                job.events.append(("end", error, None))
            self._cond.notify_all()
