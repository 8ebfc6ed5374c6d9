"""The compute ledger wired into Tune: a callback that records, a stopper that enforces.

Tune pickles its callbacks, stopper and searcher with the experiment and unpickles them on
`rsearch resume`; each finds the run's one ledger in this driver process by its run directory
(`ledger_for`), so a resumed search continues the spend and the budget where they were.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from rsearch.spec.search import SearchSpec
from rsearch.tune.ledger import ComputeLedger, EpochCost, Estimator

_LEDGERS: dict[str, ComputeLedger] = {}


def ledger_for(run_dir: Path, spec: SearchSpec) -> ComputeLedger:
    """The run's ledger in this process, made on first use (estimates only with a budget)."""
    key = str(run_dir.resolve())
    if key not in _LEDGERS:
        from rsearch.plan import scheduler_max_t  # deferred: may count the base model's FLOPs

        estimate = trial_estimator(spec) if spec.search.budget is not None else None
        _LEDGERS[key] = ComputeLedger(run_dir, spec, estimate, scheduler_max_t(spec))
    return _LEDGERS[key]


def forget_ledger(run_dir: Path) -> None:
    """Drop the run's ledger (the driver ends; a later run in this process starts afresh)."""
    _LEDGERS.pop(str(run_dir.resolve()), None)


def trial_estimator(spec: SearchSpec) -> Estimator:
    """Per-epoch cost estimates of a trial from its params (rsearch.plan's estimate)."""
    from rsearch.plan.cost import estimate_trial  # deferred: torch and timm
    from rsearch.spec.space_paths import apply_params

    def estimate(params: Any) -> list[EpochCost]:
        cost = estimate_trial(apply_params(spec.base, dict(params)), spec.resources)
        return [
            EpochCost(flops=e.train_flops + e.eval_flops, device_s=e.device_s, fidelity=e.fidelity)
            for e in cost.epochs
        ]

    return estimate


class LedgerCallback(Callback):
    """Feeds the ledger every result and ending, and counts the driver's wall time."""

    def __init__(self, run_dir: Path, spec: SearchSpec):
        self._run_dir = run_dir
        self._spec = spec
        self._started = 0.0

    @property
    def ledger(self) -> ComputeLedger:
        """The run's ledger."""
        return ledger_for(self._run_dir, self._spec)

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Start the wall clock of this driver."""
        self._started = time.monotonic()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self.ledger.observe(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ledger.observe(trial.trial_id, trial.last_result or {})
        self.ledger.release(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ledger.observe(trial.trial_id, trial.last_result or {})
        self.ledger.release(trial.trial_id)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Write the final record before tracking reads it (this callback comes first)."""
        self.ledger.add_wall_time(time.monotonic() - self._started)


class SearchStopper(Stopper):
    """Ends a trial at its epoch budget, or at a rung whose next stretch the budget cannot pay."""

    def __init__(self, run_dir: Path, spec: SearchSpec):
        self._run_dir = run_dir
        self._spec = spec

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if int(result.get("epoch", 0) or 0) >= self._spec.budget_epochs:
            return True  # at its budget a trial is done (PBT would otherwise pause it again)
        ledger = ledger_for(self._run_dir, self._spec)
        ledger.observe(trial_id, result)
        return not ledger.may_continue(trial_id, result)

    def stop_all(self) -> bool:
        return False
