"""rsearch's search machinery against raw Ray Tune, on trivial trials.

Both sides run N trivial function trials at the same concurrency with reused actors in one
Ray instance, side by side: raw Ray Tune (Tuner + a random search over a dict space) versus
rsearch's Tuner (Optuna TPE study in sqlite, PRUNED-aware searcher, scheduler, live-table
callback off). The trial body is the same no-op, so the ratio is the cost of rsearch's own
machinery; the cost of Ray Train per trial is measured by trial_startup.py.
A second measurement times the Optuna suggestion (ask + define-by-run + tell) at 1,000 trials.

    .venv/bin/python benchmarks/search_overhead.py --trials 40 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune

from rsearch.rundir import STUDY_FILE
from rsearch.spec import parse_spec_text
from rsearch.tune.optuna_searcher import OptunaSearcher
from rsearch.tune.tuner import make_tuner

SPEC = """
name: overhead
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: tpe, num_trials: {trials}, max_concurrent: 2, seed: 0}}
scheduler: {{type: asha, grace_period: 1, max_t: 3}}
base: {{epochs: 3}}
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
  optim.weight_decay: {{type: float, low: 1.0e-6, high: 1.0e-3, log: true}}
  optim.name: {{type: categorical, choices: [sgd, sam]}}
  optim.sam_rho: {{type: float, low: 0.01, high: 0.2, when: {{optim.name: sam}}}}
"""


def trivial(config: dict[str, Any]) -> None:
    """Three 'epochs' of a made-up score, as fast as Tune lets them go."""
    lr = config["params"]["optim.lr"] if "params" in config else config["lr"]
    for epoch in range(1, 4):
        tune.report({"epoch": epoch, "val_top1": 100 * lr * epoch})


def run_raw(trials: int, root: Path, reuse: bool = True) -> float:
    """Plain Ray Tune: random search over an equivalent dict space, same scheduler."""
    start = time.perf_counter()
    tuner = tune.Tuner(
        trivial,
        param_space={
            "lr": tune.loguniform(0.001, 0.3),
            "wd": tune.loguniform(1e-6, 1e-3),
            "opt": tune.choice(["sgd", "sam"]),
        },
        tune_config=tune.TuneConfig(
            num_samples=trials,
            max_concurrent_trials=2,
            reuse_actors=reuse,
            scheduler=tune.schedulers.ASHAScheduler(
                time_attr="epoch", metric="val_top1", mode="max", max_t=3
            ),
        ),
        run_config=tune.RunConfig(name=f"raw-{reuse}", storage_path=str(root), verbose=0),
    )
    tuner.fit()
    return time.perf_counter() - start


def run_rsearch(trials: int, root: Path) -> float:
    """rsearch's Tuner with the same trivial trial body."""
    spec = parse_spec_text(SPEC.format(trials=trials))
    run_dir = root / "rsearch"
    run_dir.mkdir()
    start = time.perf_counter()
    tuner = make_tuner(spec, run_dir, 2, live=False, trainable=trivial)
    tuner.fit()
    return time.perf_counter() - start


def suggestion_ms(trials: int) -> tuple[float, float]:
    """Mean and p95 wall time (ms) of one suggest + complete over `trials` trials (sqlite)."""
    spec = parse_spec_text(SPEC.format(trials=trials))
    times = []
    with tempfile.TemporaryDirectory() as d:
        searcher = OptunaSearcher(spec, Path(d) / STUDY_FILE, budget_epochs=3)
        for i in range(trials):
            start = time.perf_counter()
            config = searcher.suggest(f"t{i}")
            assert config is not None
            lr = config["params"]["optim.lr"]
            searcher.on_trial_complete(f"t{i}", {"epoch": 3, "val_top1": 100 * lr})
            times.append(1000 * (time.perf_counter() - start))
    last = times[-100:]
    return statistics.mean(last), sorted(last)[int(0.95 * len(last))]


def main() -> None:
    """Run both sides alternately and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--suggest-trials", type=int, default=1000)
    args = parser.parse_args()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    raw, fresh, ours = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            raw.append(run_raw(args.trials, Path(d)))
        with tempfile.TemporaryDirectory() as d:
            fresh.append(run_raw(args.trials, Path(d), reuse=False))
        with tempfile.TemporaryDirectory() as d:
            ours.append(run_rsearch(args.trials, Path(d)))
    ray.shutdown()
    r, f, o = min(raw), min(fresh), min(ours)
    n = args.trials
    print(f"{n} trivial trials, concurrency 2 (best of {args.repeats})")
    print(f"  raw Ray Tune, reused actors : {r:7.2f} s  ({r / n * 1000:.0f} ms/trial)")
    print(f"  raw Ray Tune, fresh actors  : {f:7.2f} s  ({f / n * 1000:.0f} ms/trial)")
    print(f"  rsearch (reused actors)     : {o:7.2f} s  ({o / n * 1000:.0f} ms/trial)")
    print(f"  ratio vs reused actors      : {o / r:.3f}  (target <= 1.10)")
    print(f"  ratio vs fresh actors       : {o / f:.3f}")
    mean, p95 = suggestion_ms(args.suggest_trials)
    print(
        f"Optuna TPE suggestion at {args.suggest_trials} trials (last 100, journal-file study): "
        f"mean {mean:.1f} ms, p95 {p95:.1f} ms (target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
