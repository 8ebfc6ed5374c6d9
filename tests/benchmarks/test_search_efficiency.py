"""The search-efficiency benchmark's replay logic on a tiny fixed table (no Ray, no training)."""

from __future__ import annotations

import math

import optuna
import pytest

from benchmarks.efficiency.inprocess import plain_optuna, run_study
from benchmarks.efficiency.ledger import Charge, Ledger
from benchmarks.efficiency.raytune import BudgetStopper, WithOwnStopper
from benchmarks.efficiency.report import over_seeds, rank_correlations
from benchmarks.efficiency.table import (
    Curve,
    Table,
    grid_points,
    key_of,
    search_range,
    snap,
)

GRID = {"optim.lr": ([0.01, 0.1, 1.0], True), "loss.label_smoothing": ([0.0, 0.2], False)}
EPOCHS = 3
TRAIN_FLOPS, EVAL_FLOPS = 2.0, 1.0
FULL_TRIAL = EPOCHS * (TRAIN_FLOPS + EVAL_FLOPS)


def tiny_table() -> Table:
    """Six recipes; lr 0.1 is best, label smoothing adds a point; epoch 1 ranks as the final."""
    meta = {"grid": {p: {"values": v, "log": log} for p, (v, log) in GRID.items()}}
    table = Table(meta=meta)
    curves = {}
    for point in grid_points(GRID):
        final = 90 - 20 * abs(math.log10(point["optim.lr"]) + 1) + 5 * point["loss.label_smoothing"]
        curves[key_of(point, GRID)] = Curve(
            params=point,
            val_top1=[final - 20, final - 5, final],
            train_flops=[TRAIN_FLOPS] * EPOCHS,
            eval_flops=[EVAL_FLOPS] * EPOCHS,
            seconds=[1.5] * EPOCHS,
            fidelity=[1.0] * EPOCHS,
        )
    table.curves["epochs"] = curves
    return table


def test_snapping_is_nearest_in_log_space_for_log_parameters() -> None:
    # 0.035 lies above the geometric mean of 0.01 and 0.1 (0.0316) but linearly nearer 0.01.
    assert snap("optim.lr", 0.035, GRID) == 0.1
    assert snap("optim.lr", 0.03, GRID) == 0.01
    assert snap("loss.label_smoothing", 0.09, GRID) == 0.0
    assert snap("loss.label_smoothing", 0.11, GRID) == 0.2


def test_search_range_gives_every_grid_value_an_equal_cell() -> None:
    low, high, log = search_range("optim.lr", GRID)
    assert log and low < 0.01 and high > 1.0
    sweep = [low * (high / low) ** ((i + 0.5) / 3000) for i in range(3000)]
    counts = {v: 0 for v in GRID["optim.lr"][0]}
    for x in sweep:
        counts[snap("optim.lr", x, GRID)] += 1
    assert all(abs(c - 1000) <= 1 for c in counts.values()), counts
    # A linear range starts at zero (no negative label smoothing) and its two cells are equal.
    assert search_range("loss.label_smoothing", GRID) == (0.0, 0.2, False)


def test_lookup_snaps_a_proposal_onto_its_curve() -> None:
    table = tiny_table()
    curve = table.lookup("epochs", {"optim.lr": 0.08, "loss.label_smoothing": 0.15})
    assert curve.params == {"optim.lr": 0.1, "loss.label_smoothing": 0.2}


def test_table_round_trips_through_json() -> None:
    table = tiny_table()
    again = Table.from_json(table.to_json())
    assert again.grid == GRID
    assert again.finals("epochs") == table.finals("epochs")
    assert again.full_trial_flops() == FULL_TRIAL


def charge(trial: str, epoch: int, top1: float, full: bool = False) -> Charge:
    return Charge(trial, epoch, TRAIN_FLOPS + EVAL_FLOPS, TRAIN_FLOPS, 1.5, top1, full)


def test_ledger_refuses_epochs_once_the_budget_is_spent() -> None:
    ledger = Ledger(budget_flops=7.0)
    assert ledger.charge(charge("a", 1, 50))
    assert ledger.charge(charge("a", 2, 60))
    assert not ledger.exhausted
    assert ledger.charge(charge("b", 1, 70))  # crosses the budget: still counted
    assert ledger.exhausted
    assert not ledger.charge(charge("b", 2, 80))
    assert ledger.spent_flops == 9.0 and len(ledger.charges) == 3


def test_compute_to_target_counts_only_full_budget_trials() -> None:
    ledger = Ledger(budget_flops=100.0)
    ledger.charge(charge("a", 1, 95))  # above target but not a finished recipe
    ledger.charge(charge("a", 2, 70, full=True))
    ledger.charge(charge("b", 1, 60))
    ledger.charge(charge("b", 2, 91, full=True))
    reach = ledger.to_target(90.0)
    assert reach == {"flops": 12.0, "train_flops": 8.0, "seconds": 6.0}
    assert ledger.to_target(92.0)["flops"] == math.inf
    assert ledger.best() == 91
    assert math.isnan(ledger.trajectory()[0][3])  # nothing finished yet
    summary = ledger.summary(90.0, full_trial_flops=6.0)
    assert summary["to_target_full_trials"] == 2.0
    assert summary["finished_trials"] == 2 and summary["trials"] == 2
    assert ledger.summary(99.0, 6.0)["to_target_flops"] is None


def samplers(method: str, seed: int) -> tuple[optuna.samplers.BaseSampler, object]:
    """(sampler, pruner) of a method; plain Optuna samplers (rsearch's need a spec's timm check)."""
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed), None
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=2), None
    return plain_optuna(method.removeprefix("optuna-"), seed, EPOCHS)


@pytest.mark.parametrize("method", ["random", "tpe", "optuna-sha", "optuna-hyperband"])
def test_in_process_methods_stay_within_budget_plus_one_epoch(method: str) -> None:
    table = tiny_table()
    budget = 4.5 * FULL_TRIAL
    sampler, pruner = samplers(method, 0)
    ledger, _wall = run_study(table, "epochs", sampler, pruner, budget)
    epoch_flops = TRAIN_FLOPS + EVAL_FLOPS
    assert budget <= ledger.spent_flops < budget + epoch_flops
    # Every counted epoch follows its trial's previous one: the curves are replayed in order.
    last: dict[str, int] = {}
    for c in ledger.charges:
        assert c.epoch == last.get(c.trial, 0) + 1
        last[c.trial] = c.epoch
    if pruner is None:
        assert ledger.summary(0.0, FULL_TRIAL)["finished_trials"] == 4  # 4 whole, 1 cut


def test_pruning_methods_start_more_trials_than_full_training() -> None:
    table = tiny_table()
    budget = 6 * FULL_TRIAL
    full, _ = run_study(table, "epochs", *samplers("tpe", 1), budget)
    sampler, pruner = samplers("optuna-sha", 1)
    pruned, _ = run_study(table, "epochs", sampler, pruner, budget)
    assert len(pruned.trials) > len(full.trials) == 6


def stopper_result(epoch: int, top1: float) -> dict[str, object]:
    """A result as the table trainable reports it."""
    return {
        "epoch": epoch,
        "val_top1": top1,
        "epoch_train_flops": 2.0,
        "epoch_eval_flops": 1.0,
        "device_s": 1.0,
        "full": epoch == EPOCHS,
    }


def test_budget_stopper_charges_results_and_stops_all_at_the_budget() -> None:
    ledger = Ledger(budget_flops=6.0)
    stopper = BudgetStopper(ledger)
    result = stopper_result
    assert not stopper("t1", result(1, 50)) and not stopper.stop_all()
    assert stopper("t2", result(1, 60)) and stopper.stop_all()
    assert stopper("t1", result(2, 70))  # after the budget: stopped, not counted
    assert ledger.spent_flops == 6.0
    assert stopper("t1", {"done": True})  # Tune's end-of-trial record carries no epoch


def test_over_seeds_treats_a_seed_that_never_reached_the_target_as_infinite() -> None:
    stats = over_seeds([2.0, None, 4.0])
    assert stats == {"median": 4.0, "min": 2.0, "max": None, "reached": 2, "seeds": 3}
    assert over_seeds([None, None, 1.0])["median"] is None


def test_rank_correlation_of_the_tiny_table_is_perfect() -> None:
    rho = rank_correlations(tiny_table(), "epochs")
    assert rho == pytest.approx({1: 1.0, 2: 1.0})


@pytest.mark.parametrize("method", ["tpe", "optuna-hyperband"])
def test_a_seed_replays_identically(method: str) -> None:
    # Hyperband's brackets hash the study's name: an unnamed study would differ run to run.
    table = tiny_table()
    runs = [run_study(table, "epochs", *samplers(method, 3), 5 * FULL_TRIAL)[0] for _ in "ab"]
    assert runs[0].charges == runs[1].charges


def test_the_budget_charges_results_the_tuners_own_stopper_ends() -> None:
    class AtEpoch:
        """Stands in for rsearch's SearchStopper: stops a trial at its last epoch."""

        def __call__(self, trial_id: str, result: dict[str, object]) -> bool:
            return result["epoch"] == EPOCHS

        def stop_all(self) -> bool:
            return False

    ledger = Ledger(budget_flops=100.0)
    stopper = WithOwnStopper(ledger, AtEpoch())
    for epoch in range(1, EPOCHS + 1):
        stopped = stopper("t1", stopper_result(epoch, 90.0))
        assert stopped == (epoch == EPOCHS)
    assert ledger.best() == 90.0 and len(ledger.charges) == EPOCHS
    assert not stopper.stop_all()
