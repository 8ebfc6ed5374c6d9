"""What a replayed search spent, and what it had found at each point: the budget's ledger.

Every method is charged by one rule. An epoch counts when its result reaches the method's
bookkeeping (Optuna's `report`, Tune's stopper); once the spent FLOPs reach the budget no
further epoch counts and the method stops. So a method spends at most the budget plus one
epoch of one trial.

A recipe counts as found when one of its trials reaches its full budget (the last epoch of its
curve): the search's answer is a recipe trained to the end, not a checkpoint halfway through
a schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Charge:
    """One counted epoch."""

    trial: str
    epoch: int
    """1-based."""
    flops: float
    train_flops: float
    seconds: float
    val_top1: float
    full: bool
    """The trial's last epoch: its recipe is trained to the end."""


@dataclass
class Ledger:
    """The compute a search spent, epoch by epoch, against a FLOPs budget."""

    budget_flops: float
    charges: list[Charge] = field(default_factory=list)
    spent_flops: float = 0.0
    spent_train_flops: float = 0.0
    spent_seconds: float = 0.0
    trials: set[str] = field(default_factory=set)

    @property
    def exhausted(self) -> bool:
        """The budget is spent: nothing more counts."""
        return self.spent_flops >= self.budget_flops

    def charge(self, charge: Charge) -> bool:
        """Count an epoch unless the budget is already spent.

        Returns:
            Whether the epoch was counted.
        """
        if self.exhausted:
            return False
        self.charges.append(charge)
        self.trials.add(charge.trial)
        self.spent_flops += charge.flops
        self.spent_train_flops += charge.train_flops
        self.spent_seconds += charge.seconds
        return True

    def trajectory(self) -> list[tuple[float, float, float, float]]:
        """(cumulative FLOPs, training FLOPs, seconds, best full-budget top-1) after each epoch.

        The best is NaN until a first trial reaches its full budget.
        """
        out = []
        flops = train = seconds = 0.0
        best = math.nan
        for c in self.charges:
            flops, train, seconds = flops + c.flops, train + c.train_flops, seconds + c.seconds
            if c.full and not c.val_top1 <= best:  # NaN-safe max
                best = c.val_top1
            out.append((flops, train, seconds, best))
        return out

    def best(self) -> float:
        """Best full-budget top-1 at the end (NaN when no trial finished)."""
        finals = [c.val_top1 for c in self.charges if c.full]
        return max(finals) if finals else math.nan

    def to_target(self, target: float) -> dict[str, float]:
        """Compute spent when a full-budget trial first reached target (inf when none did)."""
        for flops, train, seconds, best in self.trajectory():
            if best >= target:
                return {"flops": flops, "train_flops": train, "seconds": seconds}
        return {"flops": math.inf, "train_flops": math.inf, "seconds": math.inf}

    def summary(self, target: float, full_trial_flops: float) -> dict[str, Any]:
        """The numbers a replay reports (JSON-ready; inf as None)."""
        reach = self.to_target(target)
        return {
            "to_target_flops": _finite_or_none(reach["flops"]),
            "to_target_train_flops": _finite_or_none(reach["train_flops"]),
            "to_target_seconds": _finite_or_none(reach["seconds"]),
            "to_target_full_trials": _finite_or_none(reach["flops"] / full_trial_flops),
            "best_at_budget": _finite_or_none(self.best()),
            "spent_flops": self.spent_flops,
            "spent_full_trials": self.spent_flops / full_trial_flops,
            "trials": len(self.trials),
            "finished_trials": sum(1 for c in self.charges if c.full),
            "epochs": len(self.charges),
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
