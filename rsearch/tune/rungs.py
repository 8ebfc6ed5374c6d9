"""Where a successive-halving scheduler decides: its time attribute, budget and rung milestones.

Pure arithmetic on the spec (no Ray, no torch), shared by the scheduler the search runs, the
budget's admission control and the report's rank correlation of low against high rungs.
"""

from __future__ import annotations

import math

from rsearch.spec.search import AshaScheduler, HyperbandScheduler, SearchSpec

EPOCH_ATTR = "epoch"
"""The training core reports `epoch` (1-based, continuing across resumes)."""
FIDELITY_ATTR = "fidelity"
"""...and `fidelity`: compute so far in full-fidelity epoch equivalents (rsearch.train.measure)."""
TICKS_ATTR = "fidelity_ticks"
"""`fidelity` in whole TICKS: what a compute-unit scheduler counts, since Ray's Hyperband
rounds its budgets to integers (a quarter-epoch rung would become 0)."""
TICKS = 100
"""Ticks per full-fidelity epoch equivalent."""

MAX_RUNGS = 30
"""More rungs than any budget reaches (Ray's ASHA keeps a fixed number too)."""


def time_attr(spec: SearchSpec) -> str:
    """The reported key the scheduler counts its budget in."""
    return TICKS_ATTR if spec.budget_unit == "compute" else EPOCH_ATTR


def scale(spec: SearchSpec) -> int:
    """Scheduler units per spec unit: TICKS for compute, 1 for epochs."""
    return TICKS if spec.budget_unit == "compute" else 1


def with_ticks(result: dict[str, object]) -> dict[str, object]:
    """A trial's result with TICKS_ATTR added when it reports `fidelity` (before Tune sees it)."""
    fidelity = result.get(FIDELITY_ATTR)
    if isinstance(fidelity, int | float) and not isinstance(fidelity, bool):
        return {**result, TICKS_ATTR: round(fidelity * TICKS)}
    return result


def ray_max_t(spec: SearchSpec, max_budget: float) -> int:
    """A trial's whole budget in scheduler units (whole epochs or ticks), as Ray gets it."""
    return math.ceil(max_budget * scale(spec) - 1e-6)


def ray_grace(spec: SearchSpec) -> int:
    """ASHA's grace period in scheduler units."""
    grace = getattr(spec.scheduler, "grace_period", 1.0)
    return max(1, round(grace * scale(spec)))


def milestones(grace: float, reduction_factor: float, max_t: float) -> list[float]:
    """ASHA's rungs that can stop a trial: Ray's (bracket 0) below max_t, in increasing order."""
    from rsearch.plan.rungs import asha_milestones  # the one copy of Ray's rung arithmetic

    return [m for m in asha_milestones(grace, reduction_factor, max_t, 0) if m < max_t]


def hyperband_milestones(reduction_factor: float, max_t: int) -> list[float]:
    """The first rung of each Hyperband bracket below max_t: int(max_t / rf**s), s >= 1."""
    out: set[float] = set()
    for s in range(1, MAX_RUNGS):
        rung = int(max_t * reduction_factor**-s)
        if rung < 1:
            break
        out.add(float(rung))
    return sorted(out)


def scheduler_milestones(spec: SearchSpec, max_budget: float) -> list[float]:
    """The rungs, in scheduler units, at which the spec's scheduler may stop a trial.

    Empty for schedulers without rungs (none; the median rule and PBT decide every epoch).

    Args:
        spec: The search.
        max_budget: A trial's whole budget in the spec's unit (`plan.scheduler_max_t`).
    """
    cfg = spec.scheduler
    max_t = ray_max_t(spec, max_budget)
    if isinstance(cfg, AshaScheduler):
        return milestones(ray_grace(spec), cfg.reduction_factor, max_t)
    if isinstance(cfg, HyperbandScheduler):
        return hyperband_milestones(cfg.reduction_factor, max_t)
    return []
