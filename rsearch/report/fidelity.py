"""How well the low rungs ranked the trials: rank correlation between successive-halving rungs.

Successive halving is only as good as its low-fidelity rungs' ranking: if the trials that lead
after one cheap epoch are not the ones that lead at the end, the scheduler stops the wrong ones.
For every pair of rungs, the trials that reached both are ranked by the objective at each, and
the two rankings compared (Spearman's rho, Kendall's tau; scipy computes both).
"""

from __future__ import annotations

from dataclasses import dataclass

from rsearch.report.data import SearchRecord, TuneTrace
from rsearch.tune.rungs import EPOCH_ATTR, TICKS_ATTR, scale, scheduler_milestones

WARN_BELOW = 0.5
"""A Spearman rho under this between a low rung and the final one misleads the scheduler."""
MIN_TRIALS = 3
"""Trials a rank correlation needs to mean anything."""


@dataclass(frozen=True)
class RungPair:
    """The rank agreement of two rungs over the trials that reached both."""

    low: float
    """The lower rung, in the scheduler's unit (epochs, or full-fidelity epoch equivalents)."""
    high: float
    """The higher rung; the trial budget for the final rung."""
    trials: int
    spearman: float | None
    kendall: float | None

    @property
    def misleading(self) -> bool:
        """Whether the low rung ranked trials too unlike the high one (rho below WARN_BELOW)."""
        return self.spearman is not None and self.spearman < WARN_BELOW


def rung_values(
    traces: dict[str, TuneTrace], metric: str, attr: str, milestones: list[float]
) -> dict[float, dict[str, float]]:
    """Each rung's objective value per trial: at the first epoch whose attr reaches it.

    Args:
        traces: Tune's per-epoch results by trial id.
        metric: The objective the scheduler ranks by.
        attr: The scheduler's time attribute (epoch or fidelity ticks).
        milestones: Rungs in the attribute's units, the last one being the trial budget.
    """
    table: dict[float, dict[str, float]] = {m: {} for m in milestones}
    for trial_id, trace in traces.items():
        for milestone in milestones:
            for epoch in sorted(trace.results):
                result = trace.results[epoch]
                if result.get(attr, float("-inf")) >= milestone and metric in result:
                    table[milestone][trial_id] = result[metric]
                    break
    return table


def rank_correlations(table: dict[float, dict[str, float]]) -> list[RungPair]:
    """Spearman and Kendall between every rung and every higher one, over shared trials."""
    from scipy import stats

    rungs = sorted(table)
    pairs = []
    for i, low in enumerate(rungs):
        for high in rungs[i + 1 :]:
            shared = sorted(set(table[low]) & set(table[high]))
            rho = tau = None
            a = [table[low][t] for t in shared]
            b = [table[high][t] for t in shared]
            # Every value tied at a rung: there is no ranking to compare.
            if len(shared) >= MIN_TRIALS and len(set(a)) > 1 and len(set(b)) > 1:
                rho = float(stats.spearmanr(a, b).statistic)
                tau = float(stats.kendalltau(a, b).statistic)
            pairs.append(RungPair(low, high, len(shared), rho, tau))
    return pairs


def search_rank_correlations(search: SearchRecord) -> list[RungPair]:
    """The rung pairs of a finished or running search (none without rungs or results)."""
    spec = search.spec
    if not search.traces or spec.scheduler.type not in ("asha", "hyperband"):
        return []
    attr = TICKS_ATTR if spec.budget_unit == "compute" else EPOCH_ATTR
    units = scale(spec)
    seen = [r.get(attr, 0.0) for t in search.traces.values() for r in t.results.values()]
    if not seen:
        return []
    # The budget is what the longest trial reached (no model to count it on here).
    budget = max(seen)
    milestones = [*scheduler_milestones(spec, budget / units), budget]
    table = rung_values(search.traces, spec.objective[0].metric, attr, milestones)
    pairs = rank_correlations(table)
    return [RungPair(p.low / units, p.high / units, p.trials, p.spearman, p.kendall) for p in pairs]
