"""Search methods replayed in this process with Optuna alone, one trial at a time.

Random search and TPE without stopping use the samplers rsearch builds for a spec
(`rsearch.tune.searchers.make_sampler`); "plain Optuna" is what a user would write instead of
rsearch: Optuna's default TPESampler with a SuccessiveHalvingPruner or a HyperbandPruner, each
trial reporting its val_top1 every epoch and asking `should_prune`.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.efficiency.ledger import Charge, Ledger
from benchmarks.efficiency.table import Curve, Grid, Table, search_range


def charge_of(curve: Curve, trial: str, epoch: int) -> Charge:
    """The Charge of a curve's 1-based epoch."""
    i = epoch - 1
    return Charge(
        trial=trial,
        epoch=epoch,
        flops=curve.flops[i],
        train_flops=curve.train_flops[i],
        seconds=curve.seconds[i],
        val_top1=curve.val_top1[i],
        full=epoch == curve.epochs,
    )


def distributions(grid: Grid) -> dict[str, Any]:
    """The search space as Optuna distributions (the grid's cells; see table.search_range)."""
    from optuna.distributions import FloatDistribution

    out = {}
    for path in grid:
        low, high, log = search_range(path, grid)
        out[path] = FloatDistribution(low, high, log=log)
    return out


def run_study(
    table: Table,
    kind: str,
    sampler: Any,
    pruner: Any,
    budget_flops: float,
) -> tuple[Ledger, float]:
    """Replay one Optuna study against the table until the budget is spent.

    Args:
        table: The curves.
        kind: Which curves trials read.
        sampler: The Optuna sampler.
        pruner: The Optuna pruner, or None to train every trial to its full budget.
        budget_flops: The FLOPs the search may spend.

    Returns:
        (the ledger, wall seconds of the replay).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        # Named: Optuna's HyperbandPruner assigns brackets by a hash of the study's name, and
        # an unnamed study gets a random one, so the same seed would replay differently.
        study_name="replay",
        direction="maximize",
        sampler=sampler,
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    space = distributions(table.grid)
    ledger = Ledger(budget_flops)
    start = time.perf_counter()
    while not ledger.exhausted:
        trial = study.ask(space)
        curve = table.lookup(kind, trial.params)
        state = _train(trial, curve, ledger, pruner is not None)
        if state == "complete":
            study.tell(trial, curve.final)
        elif state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        # "cut": the budget ran out mid-trial; the search is over, nothing is told.
    return ledger, time.perf_counter() - start


def _train(trial: Any, curve: Curve, ledger: Ledger, prune: bool) -> str:
    """Spend a trial's epochs; returns complete, pruned or cut."""
    for epoch in range(1, curve.epochs + 1):
        if not ledger.charge(charge_of(curve, f"t{trial.number}", epoch)):
            return "cut"
        trial.report(curve.val_top1[epoch - 1], epoch)
        if prune and epoch < curve.epochs and trial.should_prune():
            return "pruned"
    return "complete"


def rsearch_sampler(algorithm: str, seed: int, grid: Grid) -> Any:
    """The sampler rsearch builds for a spec searching with `algorithm` (tpe or random)."""
    from benchmarks.efficiency.specs import search_spec
    from rsearch.tune.searchers import make_sampler

    return make_sampler(search_spec("epochs", algorithm, "none", seed, grid=grid))


def plain_optuna(pruner: str, seed: int, epochs: int) -> tuple[Any, Any]:
    """(sampler, pruner) of plain Optuna: the default TPE and a successive-halving pruner."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed)
    if pruner == "sha":
        return sampler, optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if pruner == "hyperband":
        return sampler, optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=3
        )
    raise ValueError(f"unknown pruner {pruner!r}: sha or hyperband")
