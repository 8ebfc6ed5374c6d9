"""The search's compute ledger and its budget: admission control, not a wall-clock kill switch.

The ledger keeps every trial's latest cumulative spend (the `total_flops`, `total_device_s` and
`device_kind` the training core reports each epoch) and writes it to the run directory's
`compute.json`. With `search.budget` it also decides, from estimates made before any compute is
spent, whether a new trial may start and whether a running trial may go on past a rung:

- A new trial is admitted only if its cost up to its first rung fits in what remains after the
  spend so far and what running trials have reserved; otherwise the search stops proposing.
- A trial that reaches a rung may continue to its next rung only if that stretch fits likewise;
  otherwise it is stopped there (told PRUNED, like a trial the scheduler stops).

A rung is where the scheduler may stop a trial: ASHA's and Hyperband's milestones, every epoch
for the median rule and PBT, the whole trial without a scheduler. So the budget can only be
overrun by an estimate's error on one stretch, never by a trial it did not admit. FLOP estimates
are exact (counted on the model); device-second estimates are scaled by each trial's measured
pace once it has reported an epoch.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.rundir.compute import (
    SECONDS_PER_HOUR,
    ComputeRecord,
    Planned,
    TrialSpend,
    read_compute,
    write_compute,
)
from rsearch.spec.search import SearchSpec
from rsearch.tune.rungs import scale, scheduler_milestones

SAVE_INTERVAL_S = 2.0
"""Seconds between writes of compute.json while results stream in (always on a trial's end)."""


@dataclass(frozen=True)
class EpochCost:
    """The estimated cost of one epoch of a trial."""

    flops: float
    device_s: float
    fidelity: float
    """This epoch's compute in full-fidelity epoch equivalents."""


Estimator = Callable[[Mapping[str, Any]], list[EpochCost]]
"""A trial's searched params -> the estimated cost of each of its epochs."""


@dataclass
class _Admitted:
    costs: list[EpochCost]
    target: int
    """Epochs the trial may train before it must ask again (the end of its current rung)."""


class ComputeLedger:
    """What a search has spent and reserved, kept in the run directory.

    Args:
        run_dir: The run directory (compute.json is read from and written there).
        spec: The search (its budget and scheduler).
        estimate: Cost of a trial's epochs from its params (needed only with a budget).
        max_budget: A trial's whole budget in the scheduler's unit (rungs are cut below it).
    """

    def __init__(
        self,
        run_dir: Path,
        spec: SearchSpec,
        estimate: Estimator | None = None,
        max_budget: float | None = None,
    ):
        self.run_dir = run_dir
        self.record = read_compute(run_dir) or ComputeRecord()
        budget = spec.search.budget
        self.record.budget_flops = budget.flops if budget else None
        self.record.budget_device_hours = budget.device_hours if budget else None
        self.record.stop_reason = None  # each driver (run, resume, extend) decides afresh
        self._spec = spec
        self._estimate = estimate
        max_t = float(max_budget if max_budget is not None else spec.base.epochs)
        self._milestones = scheduler_milestones(spec, max_t)  # in scheduler units
        self._admitted: dict[str, _Admitted] = {}
        self._last_save = 0.0

    @property
    def limited(self) -> bool:
        """Whether the search has a budget."""
        return self.record.budget_flops is not None or self.record.budget_device_hours is not None

    def set_plan(self, total_flops: float, total_device_hours: float) -> None:
        """Record the estimate made before the search ran."""
        self.record.planned = Planned(
            total_flops=total_flops, total_device_hours=total_device_hours
        )
        self.save(force=True)

    # --- spend -----------------------------------------------------------------------------

    def observe(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Take a trial's latest cumulative spend from one of its results (idempotent)."""
        flops, device_s = result.get("total_flops"), result.get("total_device_s")
        if not isinstance(flops, int | float) or not isinstance(device_s, int | float):
            return
        spend = self.record.trials.setdefault(trial_id, TrialSpend())
        epoch = int(result.get("epoch", 0) or 0)
        if epoch < spend.epochs:
            return  # a resumed trial repeating an epoch it had reported: keep the later total
        spend.flops, spend.device_s, spend.epochs = float(flops), float(device_s), epoch
        kind = result.get("device_kind")
        if isinstance(kind, str) and kind:
            spend.device_kind = kind
        self.save()

    def save(self, force: bool = False) -> None:
        """Write compute.json (at most every SAVE_INTERVAL_S unless forced)."""
        now = time.monotonic()
        if force or now - self._last_save >= SAVE_INTERVAL_S:
            write_compute(self.run_dir, self.record)
            self._last_save = now

    def add_wall_time(self, seconds: float) -> None:
        """Count a driver's wall-clock time toward the search's."""
        self.record.wall_s += seconds
        self.save(force=True)

    # --- budget ----------------------------------------------------------------------------

    def admit(self, trial_id: str, params: Mapping[str, Any]) -> str | None:
        """Admit a new trial, or say why it does not fit (then the search stops proposing).

        Returns:
            None when admitted (its first stretch is reserved), else the refusal in words.
        """
        if not self.limited or self._estimate is None:
            return None
        costs = self._estimate(params)
        target = self._next_stop(costs, 0)
        refusal = self._refusal(costs[:target], exclude=trial_id)
        if refusal is not None:
            self.record.stop_reason = f"budget: a new trial's first rung {refusal}"
            self.save(force=True)
            return self.record.stop_reason
        self._admitted[trial_id] = _Admitted(costs, target)
        return None

    def may_continue(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """Whether a trial that just reported an epoch may train on (False: stop it here)."""
        admitted = self._admitted.get(trial_id)
        if not self.limited or admitted is None:
            return True
        epoch = int(result.get("epoch", 0) or 0)
        if epoch < admitted.target or epoch >= len(admitted.costs):
            return True
        target = self._next_stop(admitted.costs, epoch)
        stretch = admitted.costs[epoch:target]
        refusal = self._refusal(stretch, exclude=trial_id, pace=self._pace(trial_id, admitted))
        if refusal is not None:
            self.record.stop_reason = f"budget: trial {trial_id}'s next rung {refusal}"
            self.save(force=True)
            return False
        admitted.target = target
        return True

    def release(self, trial_id: str) -> None:
        """A trial ended: its reservation goes."""
        self._admitted.pop(trial_id, None)
        self.save(force=True)

    def _next_stop(self, costs: list[EpochCost], done: int) -> int:
        """The epoch count at which a trial with these costs meets its next rung after `done`."""
        later = [e for e in self._rung_epochs(costs) if e > done]
        return min(later) if later else len(costs)

    def _rung_epochs(self, costs: list[EpochCost]) -> set[int]:
        """Epoch counts (1-based) after which the scheduler may stop a trial with these costs."""
        kind = self._spec.scheduler.type
        if kind in ("median", "pbt"):
            return set(range(1, len(costs) + 1))  # they may stop a trial after any epoch
        # A rung's decision falls on the first epoch whose progress reaches its milestone,
        # counted as the scheduler counts (epochs, or compute in whole ticks).
        units = scale(self._spec)
        if self._spec.budget_unit == "compute":
            progress = [round(f * units) for f in itertools.accumulate(c.fidelity for c in costs)]
        else:
            progress = list(range(1, len(costs) + 1))
        epochs = set()
        for milestone in self._milestones:
            reached = [i + 1 for i, p in enumerate(progress) if p >= milestone]
            if reached:
                epochs.add(reached[0])
        return epochs

    def _pace(self, trial_id: str, admitted: _Admitted) -> float:
        """Measured over estimated device-seconds for the epochs the trial has trained."""
        spend = self.record.trials.get(trial_id)
        if spend is None or spend.epochs == 0:
            return 1.0
        estimated = sum(c.device_s for c in admitted.costs[: spend.epochs])
        return spend.device_s / estimated if estimated > 0 else 1.0

    def _reserved(self, exclude: str) -> tuple[float, float]:
        """FLOPs and device-seconds running trials may still spend up to their targets."""
        flops = device_s = 0.0
        for trial_id, admitted in self._admitted.items():
            if trial_id == exclude:
                continue
            spend = self.record.trials.get(trial_id, TrialSpend())
            pace = self._pace(trial_id, admitted)
            stretch = admitted.costs[: admitted.target]
            flops += max(0.0, sum(c.flops for c in stretch) - spend.flops)
            device_s += max(0.0, pace * sum(c.device_s for c in stretch) - spend.device_s)
        return flops, device_s

    def _refusal(self, stretch: list[EpochCost], exclude: str, pace: float = 1.0) -> str | None:
        reserved_flops, reserved_s = self._reserved(exclude)
        need_flops = sum(c.flops for c in stretch)
        need_s = pace * sum(c.device_s for c in stretch)
        record = self.record
        if record.budget_flops is not None:
            left = record.budget_flops - record.total_flops - reserved_flops
            if need_flops > left:
                return f"needs {need_flops:.3g} FLOPs and {max(left, 0):.3g} remain"
        if record.budget_device_hours is not None:
            left_h = (
                record.budget_device_hours
                - record.total_device_hours
                - reserved_s / SECONDS_PER_HOUR
            )
            need_h = need_s / SECONDS_PER_HOUR
            if need_h > left_h:
                return f"needs {need_h:.3g} device-hours and {max(left_h, 0):.3g} remain"
        return None
