"""Search methods replayed on Ray Tune: rsearch's own machinery, and stock OptunaSearch + ASHA.

Both run the same Tune function trainable, which reads its trial's curve from the table and
reports each epoch with the metric keys rsearch's training core reports (`epoch`, `val_top1`,
and `fidelity`, the cumulative full-fidelity epoch equivalents the compute unit counts). It
sleeps `tick` seconds per full-fidelity epoch's FLOPs before each report, so concurrent trials
finish their epochs in the order their compute dictates (an epoch at 16 px comes back sooner).
Both Tuners reuse trial actors (see run_rsearch).
One Tune Stopper charges every result to the method's Ledger and ends the search when the
budget is spent: the same rule for every method.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.efficiency.inprocess import distributions
from benchmarks.efficiency.ledger import Charge, Ledger
from benchmarks.efficiency.table import Table, key_of, snap_point

TRIAL_RESOURCES = {"cpu": 1}
"""Each replayed trial holds one CPU: with `ray.init(num_cpus=concurrency)` every method runs
exactly `concurrency` trials at once."""


def table_trainable(config: dict[str, Any], table: Table, kind: str, tick: float) -> None:
    """Tune function trainable: a trial's epochs read from the table.

    Reports what rsearch's trial driver reports for an epoch of the training core (the compute
    metrics of rsearch.spec.metrics, `fidelity_ticks` added by `with_ticks`), plus `full`: the
    epoch is the curve's last.
    """
    from ray import tune

    from rsearch.tune.rungs import with_ticks

    params = config.get("params", config)  # rsearch nests the searched values under "params"
    curve = table.lookup(kind, params)
    point = key_of(snap_point(params, table.grid), table.grid)
    full_epoch = table.full_trial_flops("epochs") / table.curves["epochs"][point].epochs
    total_flops = total_s = fidelity = 0.0
    for epoch in range(1, curve.epochs + 1):
        i = epoch - 1
        time.sleep(tick * curve.flops[i] / full_epoch)
        total_flops += curve.flops[i]
        total_s += curve.seconds[i]
        fidelity += curve.fidelity[i]
        metrics = {
            "epoch": epoch,
            "val_top1": curve.val_top1[i],
            "epoch_train_flops": curve.train_flops[i],
            "epoch_eval_flops": curve.eval_flops[i],
            "total_flops": total_flops,
            "device_s": curve.seconds[i],  # one worker: device-seconds are the epoch's seconds
            "total_device_s": total_s,
            "fidelity": fidelity,
            "full": epoch == curve.epochs,
            "point": point,
        }
        tune.report(with_ticks(metrics))


class BudgetStopper:
    """A Tune Stopper that charges each result to a Ledger and stops all at the budget."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Charge the result; stop its trial when the budget is (or was already) spent."""
        if "epoch_train_flops" not in result:  # Tune's own end-of-trial record
            return self.ledger.exhausted
        train = float(result["epoch_train_flops"])
        self.ledger.charge(
            Charge(
                trial=trial_id,
                epoch=int(result["epoch"]),
                flops=train + float(result["epoch_eval_flops"]),
                train_flops=train,
                seconds=float(result["device_s"]),
                val_top1=float(result["val_top1"]),
                full=bool(result["full"]),
            )
        )
        return self.ledger.exhausted

    def stop_all(self) -> bool:
        """End the whole search once the budget is spent."""
        return self.ledger.exhausted


class WithOwnStopper(BudgetStopper):
    """The budget stopper in front of a Tuner's own stopper; both see every result.

    (Ray's CombinedStopper stops asking at the first stopper that says stop, so a result that
    ends a trial at its epoch budget would never be charged.)
    """

    def __init__(self, ledger: Ledger, own: Any):
        super().__init__(ledger)
        self.own = own

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Charge the result, then ask the Tuner's own stopper too."""
        budget = super().__call__(trial_id, result)
        return bool(self.own(trial_id, result)) or budget

    def stop_all(self) -> bool:
        """Stop at the budget, or when the Tuner's own stopper says so."""
        return super().stop_all() or bool(self.own.stop_all())


def _stopper(ledger: Ledger, own: Any = None) -> Any:
    """The budget stopper as a Tune Stopper, before a Tuner's own stopper when it has one."""
    from ray.tune.stopper import Stopper

    # Tune checks isinstance(stop, Stopper); the classes above stay importable without Ray.
    if isinstance(own, Stopper):
        return type("TuneWithOwnStopper", (WithOwnStopper, Stopper), {})(ledger, own)
    return type("TuneBudgetStopper", (BudgetStopper, Stopper), {})(ledger)


def _trainable(table: Table, kind: str, tick: float) -> Any:
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(table_trainable, table=table, kind=kind, tick=tick),
        TRIAL_RESOURCES,
    )


def run_rsearch(
    table: Table,
    kind: str,
    scheduler: str,
    seed: int,
    budget_flops: float,
    concurrency: int,
    tick: float,
) -> tuple[Ledger, float]:
    """rsearch's Tuner (`make_tuner`: its Optuna searcher and ASHA) over the table.

    Returns:
        (the ledger, wall seconds of the replay).
    """
    from benchmarks.efficiency.specs import search_spec
    from rsearch.tune.tuner import make_tuner

    spec = search_spec(kind, "tpe", scheduler, seed, concurrency, table.grid)
    ledger = Ledger(budget_flops)
    with tempfile.TemporaryDirectory(prefix="efficiency-") as root:
        run_dir = Path(root) / "run"
        run_dir.mkdir()
        tuner = make_tuner(
            spec, run_dir, concurrency, live=False, trainable=_trainable(table, kind, tick)
        )
        # The budget stopper joins rsearch's own (epoch budget, search.budget's rung stops);
        # make_tuner has no argument for it.
        run_config = tuner._local_tuner.get_run_config()
        run_config.stop = _stopper(ledger, run_config.stop)
        # rsearch starts a fresh actor per trial because a stopped trial's Ray Train run must
        # die with it; a table trial runs no Train run, so both Ray methods reuse actors and
        # the replay times the search machinery, not actor start-up (search_overhead.py).
        tuner._local_tuner._tune_config.reuse_actors = True
        start = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - start
    return ledger, wall


def run_stock(
    table: Table,
    seed: int,
    budget_flops: float,
    concurrency: int,
    tick: float,
    epochs: int,
) -> tuple[Ledger, float]:
    """Ray Tune's stock OptunaSearch (default TPE) + ASHAScheduler over the epoch curves."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from benchmarks.efficiency.specs import REDUCTION_FACTOR

    ledger = Ledger(budget_flops)
    space = distributions(table.grid)
    searcher = OptunaSearch(space=space, metric="val_top1", mode="max", seed=seed)
    scheduler = ASHAScheduler(
        time_attr="epoch",
        metric="val_top1",
        mode="max",
        max_t=epochs,
        grace_period=1,
        reduction_factor=REDUCTION_FACTOR,
    )
    with tempfile.TemporaryDirectory(prefix="efficiency-") as root:
        tuner = tune.Tuner(
            _trainable(table, "epochs", tick),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=100_000,
                max_concurrent_trials=concurrency,
                reuse_actors=True,  # as for rsearch's replay (see run_rsearch)
            ),
            run_config=tune.RunConfig(
                name="stock", storage_path=root, stop=_stopper(ledger), verbose=0
            ),
        )
        start = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - start
    return ledger, wall


def start_ray(concurrency: int) -> None:
    """One embedded Ray for every replay, sized so `concurrency` trials run at once."""
    import ray

    from rsearch.tune.quiet import quiet_ray

    root = str(Path(__file__).resolve().parents[2])
    # Workers import the trainable from the benchmarks package: put the repository on their path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p
    )
    quiet_ray()
    # Tune's per-run INFO lines and its warnings about trials the budget stopped before their
    # first result was written are noise here, 35 times over.
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
