"""Where a scheduler is expected to stop trials: rungs, brackets and the trials reaching each.

Pure arithmetic on the spec, in the scheduler's unit (epochs, or full-fidelity epoch
equivalents when `unit: compute`), mirroring Ray Tune's schedulers:

- ASHA: bracket s has rungs at grace_period * rf^(k+s) (k = 0, 1, ... while Ray's rung count
  allows); a trial joins a bracket with Ray's probabilities (the n trials are shared out by
  them); of a bracket's n trials, ceil(n / rf^k) are expected to reach its k-th rung, so
  the others stop at the rung before. Rungs at or past max_t stop nobody: trials end there.
- Hyperband (synchronous): brackets s = 0, 1, ... of Ray's band take the trials in the order
  they are proposed (n0(s) = ceil(s_max / (s + 1) * rf^s) each, first rung
  r0(s) = int(max_t / rf^s)); each halving keeps ceil(n / rf) of the bracket's nominal size and
  the rung grows to int(min(r * rf, max_t)); the last rung's survivors stop there.
- none, median and pbt: every trial runs its whole budget (for median and PBT an upper bound:
  the median rule may stop trials early, PBT only copies checkpoints).

A trial's expected spend weighs its spend up to each stop by the chance of stopping there; a
driver admitting proposals against `search.budget` asks `admission_cost` for a trial's spend up
to the first rung and up to its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rsearch.plan.cost import (
    Spend,
    TrialCost,
    cost_to_epoch,
    epochs_to_reach,
    recipe_fidelity,
    weighted,
)
from rsearch.spec.search import AshaScheduler, BudgetUnit, HyperbandScheduler, SearchSpec

Stop = tuple[float, float | None]
"""(probability, milestone in the scheduler's unit) of a trial's stop; None: its whole budget."""


@dataclass(frozen=True)
class Rung:
    """A milestone at which a scheduler compares trials and stops the weaker ones."""

    milestone: float
    """In the scheduler's unit."""
    trials: int
    """Trials expected to reach it."""


@dataclass(frozen=True)
class Bracket:
    """Trials compared with one another, their rungs, and how many go on to the end."""

    trials: int
    rungs: tuple[Rung, ...]
    """Rungs that stop trials, in order."""
    to_end: int
    """Trials expected to pass every rung."""
    end: float | None
    """Where those stop (Hyperband's last rung); None: at their whole budget."""
    members: tuple[int, ...] | None
    """Indices of the trials in it (Hyperband fills brackets in proposal order); None: any
    trial may land here, by chance (ASHA)."""

    def stops(self) -> list[Stop]:
        """A bracket trial's stop points with their probabilities."""
        if not self.trials:
            return []
        reached = [r.trials for r in self.rungs] + [self.to_end]
        out: list[Stop] = [
            ((reached[k] - reached[k + 1]) / self.trials, rung.milestone)
            for k, rung in enumerate(self.rungs)
        ]
        out.append((self.to_end / self.trials, self.end))
        return [(p, m) for p, m in out if p > 0]


@dataclass(frozen=True)
class Schedule:
    """The scheduler's expected stops for a number of trials."""

    scheduler: str
    unit: BudgetUnit
    max_t: float | None
    """The most a trial runs, in unit (None: each trial's own length)."""
    brackets: tuple[Bracket, ...]
    upper_bound: bool
    """The scheduler may stop trials earlier than planned (median) or not at all predictably."""

    def stops(self, index: int) -> list[Stop]:
        """The stop points, with probabilities, of the index-th proposed trial."""
        total = sum(b.trials for b in self.brackets)
        for bracket in self.brackets:
            if bracket.members is not None and index in bracket.members:
                return bracket.stops()
        return [
            (p * bracket.trials / total, m)
            for bracket in self.brackets
            if bracket.members is None and bracket.trials
            for p, m in bracket.stops()
        ]


def schedule(spec: SearchSpec, trials: int, max_t: float) -> Schedule:
    """Where the spec's scheduler is expected to stop `trials` trials.

    Args:
        spec: the search.
        trials: trials proposed.
        max_t: the scheduler's budget in its unit (the spec's max_t, or the base recipe's
            whole training: its epochs, or their fidelity when the unit is compute).
    """
    cfg = spec.scheduler
    unit = spec.budget_unit
    if isinstance(cfg, AshaScheduler):
        return Schedule("asha", unit, max_t, asha_brackets(cfg, trials, max_t), False)
    if isinstance(cfg, HyperbandScheduler):
        return Schedule("hyperband", unit, max_t, hyperband_brackets(cfg, trials, max_t), False)
    everyone = Bracket(trials, (), trials, None, None)
    return Schedule(cfg.type, unit, None, (everyone,), cfg.type in ("median", "pbt"))


def asha_milestones(grace: float, rf: float, max_t: float, s: int) -> list[float]:
    """Ray's ASHA rungs of bracket s, ascending (some may lie at or past max_t)."""
    count = int(np.log(max_t / grace) / np.log(rf) - s + 1)
    return [grace * rf ** (k + s) for k in range(max(0, count))]


def asha_brackets(cfg: AshaScheduler, trials: int, max_t: float) -> tuple[Bracket, ...]:
    """ASHA's brackets, the trials shared out by Ray's bracket probabilities."""
    rf = cfg.reduction_factor
    milestones = [asha_milestones(cfg.grace_period, rf, max_t, s) for s in range(cfg.brackets)]
    sizes = np.array([len(m) for m in milestones], dtype=float)
    weights = np.e ** (sizes - sizes.max())
    out = []
    for members, ladder in zip(_share(trials, weights / weights.sum()), milestones, strict=True):
        stopping = [m for m in ladder if m < max_t]
        reached = [math.ceil(members / rf**k) for k in range(len(stopping) + 1)]
        rungs = tuple(Rung(m, n) for m, n in zip(stopping, reached, strict=False))
        out.append(Bracket(members, rungs, reached[-1], None, None))
    return tuple(out)


def _share(total: int, probabilities: np.ndarray) -> list[int]:
    """total split in proportion to probabilities, whole numbers (largest remainder)."""
    exact = probabilities * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def hyperband_brackets(cfg: HyperbandScheduler, trials: int, max_t: float) -> tuple[Bracket, ...]:
    """Ray's synchronous Hyperband brackets, filled with the trials in proposal order."""
    eta = cfg.reduction_factor
    s_max_1 = int(np.round(np.log(max_t) / np.log(eta))) + 1
    out: list[Bracket] = []
    start = 0
    while start < trials:
        for s in range(s_max_1):
            first = int(max_t * eta ** (-s))
            if first == 0:  # Ray skips a bracket whose first rung rounds to nothing
                continue
            size = int(np.ceil(s_max_1 / (s + 1) * eta**s))
            members = tuple(range(start, min(trials, start + size)))
            out.append(_halvings(members, size, first, s, eta, max_t))
            start += len(members)
            if start >= trials:
                break
    return tuple(out)


def _halvings(
    members: tuple[int, ...], size: int, first: int, s: int, eta: float, max_t: float
) -> Bracket:
    # Ray's _Bracket.successive_halving: the nominal size shrinks by eta (ceil) at each of the
    # s halvings and the milestone grows by eta (int, capped at max_t); a bracket not filled
    # keeps every trial while its nominal size allows.
    live, nominal, milestone = len(members), size, first
    rungs = []
    for _ in range(s):
        rungs.append(Rung(float(milestone), live))
        nominal = int(np.ceil(nominal / eta))
        live = min(live, nominal)
        milestone = int(min(milestone * eta, max_t))
    return Bracket(len(members), tuple(rungs), live, float(milestone), members)


# --- what a trial spends until the scheduler stops it ---------------------------------------


@dataclass(frozen=True)
class Admission:
    """What a driver weighs before admitting a proposal against the remaining budget."""

    first_rung: Spend
    """Spend up to the first milestone at which the scheduler could stop it."""
    to_end: Spend
    """Spend of its whole budget."""


def scheduler_max_t(spec: SearchSpec) -> float:
    """The scheduler's budget in its unit: max_t, else the base recipe's whole training.

    In epochs that is spec.budget_epochs; in compute, the base recipe's total fidelity.
    """
    max_t = getattr(spec.scheduler, "max_t", None)
    if spec.budget_unit == "epochs":
        return float(spec.budget_epochs)
    return float(max_t) if max_t is not None else sum(recipe_fidelity(spec.base))


def trial_end(spec: SearchSpec, cost: TrialCost, max_t: float | None = None) -> int:
    """Epochs a trial trains when nothing stops it: its recipe's, capped by the scheduler."""
    end = min(len(cost.epochs), spec.budget_epochs)
    if spec.budget_unit == "compute":
        end = min(
            end, epochs_to_reach(cost, scheduler_max_t(spec) if max_t is None else max_t, "compute")
        )
    return end


def admission_cost(spec: SearchSpec, cost: TrialCost, max_t: float | None = None) -> Admission:
    """A trial's spend up to the first rung any trial can be stopped at, and to its end."""
    max_t = scheduler_max_t(spec) if max_t is None else max_t
    end = trial_end(spec, cost, max_t)
    sched = schedule(spec, 1, max_t)
    milestones = [r.milestone for b in sched.brackets for r in b.rungs]
    milestones += [b.end for b in sched.brackets if b.end is not None]
    first = end
    if milestones:
        first = min(end, epochs_to_reach(cost, min(milestones), spec.budget_unit))
    return Admission(cost_to_epoch(cost, first), cost_to_epoch(cost, end))


def expected_spend(
    spec: SearchSpec, sched: Schedule, index: int, cost: TrialCost, max_t: float
) -> Spend:
    """The index-th trial's spend weighed over where the scheduler may stop it."""
    end = trial_end(spec, cost, max_t)
    parts = []
    for probability, milestone in sched.stops(index):
        epochs = (
            end if milestone is None else min(end, epochs_to_reach(cost, milestone, sched.unit))
        )
        parts.append((probability, cost_to_epoch(cost, epochs)))
    return weighted(parts)
