"""The compute ledger on its own: spend kept in the run directory, admission and rung stops.

Estimates are given as fixed per-epoch costs (the estimator itself is tested in tests/plan),
so every decision here is exact arithmetic, no training and no timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.rundir import read_compute
from rsearch.spec import parse_spec_text
from rsearch.tune.ledger import ComputeLedger, EpochCost
from rsearch.tune.rungs import hyperband_milestones, milestones, scheduler_milestones

SPEC = """
name: s
objective: {metric: val_top1}
search: {num_trials: 20, budget: {flops: BUDGET}}
scheduler: SCHEDULER
base: {epochs: 9}
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""

FULL = EpochCost(flops=100.0, device_s=10.0, fidelity=1.0)


def _spec(budget: float, scheduler: str = "{type: asha, grace_period: 1, reduction_factor: 3}"):
    return parse_spec_text(SPEC.replace("BUDGET", str(budget)).replace("SCHEDULER", scheduler))


def _ledger(tmp_path: Path, budget: float, costs: list[EpochCost], **kw: str) -> ComputeLedger:
    return ComputeLedger(tmp_path, _spec(budget, **kw), lambda params: list(costs), 9.0)


def _result(epoch: int, flops: float, device_s: float = 0.0) -> dict[str, object]:
    return {"epoch": epoch, "total_flops": flops, "total_device_s": device_s, "device_kind": "cpu"}


def test_spend_is_the_latest_cumulative_report_and_is_written_to_the_run_dir(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path, 1e9, [FULL] * 9)
    ledger.observe("a", _result(1, 100.0, 10.0))
    ledger.observe("a", _result(2, 200.0, 20.0))
    ledger.observe("a", _result(1, 100.0, 10.0))  # a resumed trial repeats an epoch
    ledger.observe("b", _result(1, 50.0, 3600.0))
    ledger.save(force=True)
    record = read_compute(tmp_path)
    assert record is not None
    assert record.total_flops == 250.0
    assert record.total_device_hours == pytest.approx((20.0 + 3600.0) / 3600)
    assert record.device_hours_by_kind == {"cpu": pytest.approx(3620.0 / 3600)}
    assert record.budget_flops == 1e9


def test_asha_rungs_in_epochs_decide_where_a_trial_must_ask_again(tmp_path: Path) -> None:
    # Rungs at 1, 3 (9 is the end): the first stretch is 1 epoch, the next 2, the last 6.
    ledger = _ledger(tmp_path, 350.0, [FULL] * 9)
    assert ledger.admit("a", {}) is None  # 100 reserved
    assert ledger.admit("b", {}) is None  # 200 reserved
    assert ledger.admit("c", {}) is None  # 300 reserved
    refusal = ledger.admit("d", {})  # 100 more would make 400 > 350
    assert refusal is not None and "100 FLOPs and 50 remain" in refusal
    ledger.observe("a", _result(1, 100.0))
    # a's next stretch (epochs 2-3) costs 200: 300 spent or reserved + 200 > 350
    assert not ledger.may_continue("a", _result(1, 100.0))
    record = read_compute(tmp_path)
    assert record is not None and record.stop_reason is not None
    assert "next rung needs 200 FLOPs" in record.stop_reason


def test_a_trial_between_rungs_trains_on_and_ended_trials_free_their_reservation(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path, 800.0, [FULL] * 9)
    assert ledger.admit("a", {}) is None
    ledger.observe("a", _result(1, 100.0))
    assert ledger.may_continue("a", _result(1, 100.0))  # to epoch 3: 300 of 800
    ledger.observe("a", _result(2, 200.0))
    assert ledger.may_continue("a", _result(2, 200.0))  # inside its stretch: no question
    ledger.observe("a", _result(3, 300.0))
    assert not ledger.may_continue("a", _result(3, 300.0))  # epochs 4-9: 600 > 800 - 300
    ledger.release("a")
    assert ledger.admit("b", {}) is None


def test_without_a_scheduler_the_whole_trial_is_reserved(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1000.0, [FULL] * 9, scheduler="{type: none}")
    assert ledger.admit("a", {}) is None  # 900
    assert ledger.admit("b", {}) is not None


def test_compute_unit_rungs_fall_on_the_epoch_that_reaches_the_milestone(tmp_path: Path) -> None:
    # Three cheap epochs (0.25 each), then full ones: rungs at 0.5, 1.5, 4.5 equivalents.
    cheap = EpochCost(flops=25.0, device_s=2.5, fidelity=0.25)
    costs = [cheap] * 3 + [FULL] * 6
    scheduler = "{type: asha, unit: compute, grace_period: 0.5, reduction_factor: 3}"
    ledger = _ledger(tmp_path, 75.0, costs, scheduler=scheduler)
    assert ledger.admit("a", {}) is None  # the first rung ends after epoch 2: 50
    assert ledger.admit("b", {}) is not None  # another 50 does not fit in 75


def test_milestones_match_rays_rung_arithmetic() -> None:
    assert milestones(1, 3, 9) == [1, 3]
    assert milestones(50, 3, 675) == [50, 150, 450]
    assert hyperband_milestones(3, 27) == [1.0, 3.0, 9.0]
    spec = _spec(1.0, scheduler="{type: asha, unit: compute, grace_period: 0.5}")
    assert scheduler_milestones(spec, 6.75) == [50, 150, 450]  # ticks: 1/100 of an epoch
    assert scheduler_milestones(_spec(1.0, scheduler="{type: median}"), 9) == []
