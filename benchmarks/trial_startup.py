"""How fast a trial starts, and what Ray Train costs once it runs: measured side by side.

Two measurements, in one Ray instance:

1. **Search**: the same small search (resnet18 on digits at 32 px, 15% of the data, 1 epoch
   a trial, 1 worker of 1 CPU, 2 trials at once) run twice: with trial drivers reused, each
   keeping its Ray Train run for the next trial (rsearch's default), and with a fresh driver
   and Train run per trial (`reuse_actors=False`, how rsearch ran before). Each trial's
   `startup_s` (driver start to the start of its first epoch) is read from its results.
2. **Steady state**: one recipe (3 epochs) trained three times in a row on one resident Train
   run (1 worker holding both CPUs), against the same `fit` in this process: start-up of the
   cold job, of the warm jobs, and of `fit` in-process; steady-state epoch time (epochs 2..N).

    .venv/bin/python benchmarks/trial_startup.py --trials 8
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from rsearch.spec import Recipe, parse_spec_text
from rsearch.tune.trainable import STARTUP_METRIC, TrialSetup
from rsearch.tune.tuner import make_tuner

SPEC = """
name: startup
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: random, num_trials: {trials}, max_concurrent: 2, seed: 0}}
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
base:
  model: {{name: resnet18}}
  data: {{dataset: digits, image_size: 32, batch_size: 16, fraction: 0.15}}
  augment: {{random_resized_crop: false, hflip: 0.0}}
  epochs: 1
space:
  optim.lr: {{type: float, low: 0.002, high: 0.3, log: true}}
"""


def search_startups(trials: int, reuse: bool, root: Path) -> tuple[list[float], float]:
    """Each trial's startup_s and the search's wall seconds."""
    spec = parse_spec_text(SPEC.format(trials=trials))
    run_dir = root / f"reuse-{reuse}"
    run_dir.mkdir()
    start = time.perf_counter()
    grid = make_tuner(spec, run_dir, 2, live=False, reuse_actors=reuse).fit()
    wall = time.perf_counter() - start
    startups = []
    for result in grid:
        frame: Any = result.metrics_dataframe
        if frame is not None and STARTUP_METRIC in frame:
            startups.append(float(frame[STARTUP_METRIC].dropna().iloc[0]))
    return startups, wall


def recipe(epochs: int) -> Recipe:
    """A realistic small trial: resnet18 on digits at 32 px, batch 64."""
    return Recipe.model_validate(
        {
            "model": {"name": "resnet18"},
            "data": {"dataset": "digits", "image_size": 32, "batch_size": 64},
            "augment": {"random_resized_crop": False, "hflip": 0.0},
            "epochs": epochs,
        }
    )


class EpochClock:
    """A report callback: when the first epoch began, and every epoch's seconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.epochs: list[float] = []

    def __call__(self, metrics: dict[str, Any], _checkpoint: str | None) -> None:
        if self.first is None:
            self.first = time.perf_counter() - float(metrics["epoch_s"])
        self.epochs.append(float(metrics["epoch_s"]))

    @property
    def startup(self) -> float:
        """Seconds from the clock's creation to the first epoch's start."""
        assert self.first is not None, "no epoch was reported"
        return self.first - self.started


def in_process(rec: Recipe, cpus: int) -> EpochClock:
    """fit in this process, timed."""
    from rsearch.train import fit

    clock = EpochClock()
    with tempfile.TemporaryDirectory() as d:
        fit(rec, clock, checkpoint_dir=d, threads=cpus)
    return clock


def alternate(rec: Recipe, cpus: int, rounds: int) -> tuple[list[EpochClock], list[EpochClock]]:
    """`rounds` jobs of rec on one resident Train run, each followed by fit in this process.

    Alternating keeps the two sides under the same load when other work shares the machine.
    """
    from rsearch.tune.resident import ResidentRun, follow_job
    from rsearch.tune.trainable import _trainer

    jobs, local = [], []
    with tempfile.TemporaryDirectory() as d:
        setup = TrialSetup(rec.model_dump(mode="json"), 1, cpus, 0, 0, d)
        run = ResidentRun(setup, lambda board, name: _trainer(setup, board, name), "bench")
        for k in range(rounds):
            clock = EpochClock()
            job = rec.model_dump(mode="json")
            seq = ray.get(run.board.post_job.remote(f"job{k}", job, None, f"t{k}"))
            follow_job(run, seq, clock)
            jobs.append(clock)
            local.append(in_process(rec, cpus))
        run.close()
        run.join(30)
    return jobs, local


def import_seconds(module: str) -> float:
    """Wall seconds a fresh Python takes to import module (what a new worker process pays)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - start


def session_phases(rec: Recipe, cpus: int) -> dict[str, float]:
    """Seconds of each step of building a training session, in this process (as fit does)."""
    import timm.data
    import torch

    from rsearch.spec.resolutions import eval_sizes, train_sizes
    from rsearch.train.bundles import build_data
    from rsearch.train.compute import count_costs
    from rsearch.train.distributed import DistContext
    from rsearch.train.model import build_model
    from rsearch.train.sources import _IN_MEMORY, count_classes

    torch.set_num_threads(cpus)
    ctx, device = DistContext(), torch.device("cpu")
    out: dict[str, float] = {}
    tick = time.perf_counter()
    model = build_model(rec, count_classes(rec.data))
    out["model built"] = time.perf_counter() - tick
    tick = time.perf_counter()
    count_costs(model, rec, train_sizes(rec.data), eval_sizes(rec.data))
    out["FLOPs counted"] = time.perf_counter() - tick
    cfg = timm.data.resolve_model_data_config(model)
    _IN_MEMORY.clear()
    for kind in ("cold", "warm"):  # warm: the worker process read it for an earlier trial
        tick = time.perf_counter()
        build_data(rec, ctx, device, cfg["interpolation"], cfg["mean"], cpus)
        out[f"data ({kind})"] = time.perf_counter() - tick
    return out


def steady(xs: list[float]) -> float:
    """Mean epoch time after the first epoch."""
    tail = xs[1:] or xs
    return sum(tail) / len(tail)


def main() -> None:
    """Run both measurements and print the goals' ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    searches = {}
    with tempfile.TemporaryDirectory() as d:
        for reuse in (True, False) if args.trials else ():  # --trials 0: steady state only
            searches[reuse] = search_startups(args.trials, reuse, Path(d))
    rec = recipe(args.epochs)
    jobs, local = alternate(rec, 2, args.rounds)
    ray.shutdown()
    imports = {m: import_seconds(m) for m in ("torch", "ray.train.torch", "rsearch.train")}
    phases = session_phases(rec, 2)

    if searches:
        print(f"search: {args.trials} trials of 1 epoch, 2 at once, 1 worker x 1 CPU each")
    for reuse, (xs, wall) in searches.items():
        name = "reused drivers" if reuse else "fresh drivers"
        print(
            f"  {name:15s}: startup_s median {statistics.median(xs):5.1f} s "
            f"(min {min(xs):4.1f}, max {max(xs):4.1f}, n={len(xs)}), search wall {wall:5.1f} s"
        )
    print(f"steady state: resnet18 digits 32 px batch 64, {args.epochs} epochs, 1 worker x 2 CPUs")
    for k, (job, own) in enumerate(zip(jobs, local, strict=True)):
        kind = "cold" if k == 0 else "warm"
        ratio = steady(own.epochs) / steady(job.epochs)
        print(
            f"  round {k}: resident job ({kind}) start-up {job.startup:5.1f} s, epoch "
            f"{steady(job.epochs):.2f} s | in-process start-up {own.startup:4.1f} s, epoch "
            f"{steady(own.epochs):.2f} s | speed ratio {ratio:.3f}"
        )
    ratios = [steady(o.epochs) / steady(j.epochs) for j, o in zip(jobs, local, strict=True)]
    median = statistics.median(ratios)
    print(f"  median speed ratio resident / in-process: {median:.3f} (goal >= 0.95)")
    print("cold start, phase by phase (seconds)")
    for module, seconds in imports.items():
        print(f"  import {module:17s} (fresh process): {seconds:5.2f}")
    for phase, seconds in phases.items():
        print(f"  {phase:24s} (in process)   : {seconds:5.2f}")
    inside = imports["rsearch.train"] + sum(v for k, v in phases.items() if k != "data (warm)")
    print(
        f"  Ray Train run start (cold job start-up less the above): {jobs[0].startup - inside:5.2f}"
    )


if __name__ == "__main__":
    main()
