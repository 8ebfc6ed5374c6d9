"""Rank correlation of low rungs against high ones, on fixed tables (no search runs)."""

from __future__ import annotations

import pytest
from scipy import stats

from rsearch.report.data import TuneTrace
from rsearch.report.fidelity import rank_correlations, rung_values

# Five trials' objective at rungs 1, 3 and 9 (trial e stopped at rung 1, d at rung 3).
TABLE = {
    1.0: {"a": 40.0, "b": 55.0, "c": 35.0, "d": 60.0, "e": 20.0},
    3.0: {"a": 70.0, "b": 65.0, "c": 50.0, "d": 80.0},
    9.0: {"a": 90.0, "b": 85.0, "c": 60.0},
}


def test_rank_correlations_equal_scipys_over_the_trials_that_reached_both_rungs() -> None:
    pairs = {(p.low, p.high): p for p in rank_correlations(TABLE)}
    shared = ["a", "b", "c", "d"]
    low, high = [TABLE[1.0][t] for t in shared], [TABLE[3.0][t] for t in shared]
    first = pairs[(1.0, 3.0)]
    assert first.trials == 4
    assert first.spearman == pytest.approx(stats.spearmanr(low, high).statistic)
    assert first.kendall == pytest.approx(stats.kendalltau(low, high).statistic)
    last = pairs[(1.0, 9.0)]
    assert last.trials == 3
    assert last.spearman == pytest.approx(
        stats.spearmanr([40.0, 55.0, 35.0], [90.0, 85.0, 60.0]).statistic
    )
    # rung 1 ranks b above a, the end ranks a above b: rho 0.5, not misleading
    assert not last.misleading


def test_too_few_shared_trials_give_no_number_and_ties_give_none() -> None:
    pairs = rank_correlations({1.0: {"a": 1.0, "b": 2.0}, 3.0: {"a": 3.0, "b": 1.0}})
    assert pairs[0].spearman is None and pairs[0].trials == 2
    flat = rank_correlations({1.0: dict.fromkeys("abc", 5.0), 3.0: {"a": 1, "b": 2, "c": 3}})
    assert flat[0].spearman is None  # every low value ties: no ranking at all


def test_a_reversed_ranking_is_flagged_as_misleading() -> None:
    table = {1.0: {"a": 1.0, "b": 2.0, "c": 3.0}, 3.0: {"a": 3.0, "b": 2.0, "c": 1.0}}
    assert rank_correlations(table)[0].misleading


def test_rung_values_take_the_first_epoch_that_reaches_each_milestone() -> None:
    def trace(points: list[tuple[float, float]]) -> TuneTrace:
        return TuneTrace(
            results={e + 1: {"fidelity_ticks": t, "val_top1": v} for e, (t, v) in enumerate(points)}
        )

    traces = {"a": trace([(25, 10.0), (50, 20.0), (150, 30.0)]), "b": trace([(40, 5.0)])}
    table = rung_values(traces, "val_top1", "fidelity_ticks", [50, 100, 150])
    assert table == {50: {"a": 20.0}, 100: {"a": 30.0}, 150: {"a": 30.0}}
