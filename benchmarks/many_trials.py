"""rsearch's driver at scale: thousands of trivial trials through the real search machinery.

The Tuner is rsearch's own (`rsearch.tune.tuner.make_tuner`: Optuna TPE searcher in the
run's journal study, ASHA, compute ledger and stopper) with the MLflow tracking callback
recording to a sqlite store, as `rsearch run` builds it; only the trial body is a trivial
function (three reported "epochs", no Ray Train), as in search_overhead.py, and the live table
is off. A thread samples the driver process's resident memory; the figures printed are its
peak, the wall time and trials per second. tests/reliability/test_many_trials.py runs the same
at 1,000 trials (300 unless RSEARCH_FULL_FIGURES=1).

    .venv/bin/python benchmarks/many_trials.py --trials 10000
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.rundir import create_run_dir
from rsearch.settings import resolve_storage
from rsearch.spec import parse_spec_text
from rsearch.spec.search import SearchSpec
from rsearch.tune.driver import tracking_callbacks, write_run_files
from rsearch.tune.tuner import make_tuner

SPEC = """
name: many
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: {algorithm}, num_trials: {trials}, max_concurrent: {concurrent}, seed: 0}}
scheduler: {{type: asha, grace_period: 1, max_t: 3}}
base: {{epochs: 3}}
tracking: {{uri: "{uri}"}}
storage: {storage}
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
  optim.weight_decay: {{type: float, low: 1.0e-6, high: 1.0e-3, log: true}}
"""

CONCURRENT = 2
"""Trials at once: one per core of the 2-core machine the figures were measured on."""


def trivial(config: dict[str, Any]) -> None:
    """Three 'epochs' of a made-up score, as fast as Tune lets them go."""
    from ray import tune

    lr = config["params"]["optim.lr"]
    for epoch in range(1, 4):
        tune.report({"epoch": epoch, "val_top1": 100 * lr * epoch})


@dataclass(frozen=True)
class Figures:
    """What one run of many trivial trials measured."""

    run_dir: Path
    spec: SearchSpec
    trials: int
    wall_s: float
    peak_rss_mb: float
    start_rss_mb: float

    @property
    def trials_per_s(self) -> float:
        """Throughput of the whole search."""
        return self.trials / self.wall_s


class PeakRss:
    """Samples a process's resident set size on a thread and keeps the peak (bytes).

    Args:
        period_s: Seconds between samples.
        progress: Called with the current RSS (bytes) about once a minute (long runs show
            how memory grows with the trials).
    """

    def __init__(self, period_s: float = 0.2, progress: Callable[[int], None] | None = None):
        import psutil  # type: ignore[import-untyped]  # Ray's own copy (ray/thirdparty_files)

        self._process = psutil.Process()
        self._period_s = period_s
        self._progress = progress
        self._stop = threading.Event()
        self.start_bytes = self._process.memory_info().rss
        self.peak_bytes = self.start_bytes
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def _sample(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self._period_s):
            rss = self._process.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, rss)
            if self._progress is not None and time.monotonic() - last >= 60:
                last = time.monotonic()
                self._progress(rss)


def run_many(
    trials: int,
    root: Path,
    concurrent: int = CONCURRENT,
    verbose: bool = False,
    algorithm: str = "tpe",
) -> Figures:
    """Run a search of `trials` trivial trials under root (Ray already initialised).

    The run directory, the study and the MLflow store (`root/mlflow.db`) are all under root.
    Verbose, a line a minute tells the trials started so far (Tune's trial directories) and
    the driver's RSS.
    """
    uri = f"sqlite:///{root / 'mlflow.db'}"
    text = SPEC.format(
        trials=trials, concurrent=concurrent, uri=uri, storage=root / "runs", algorithm=algorithm
    )
    spec = parse_spec_text(text)
    storage = resolve_storage(spec.storage, None)
    run_dir = create_run_dir(storage.local, spec.name)
    run = write_run_files(run_dir, spec, None, None, True, storage, None)
    start = time.perf_counter()

    def progress(rss: int) -> None:
        started = sum(1 for p in run_dir.iterdir() if p.is_dir() and p.name.startswith("trivial"))
        wall = time.perf_counter() - start
        print(
            f"  {wall:7.0f} s: {started} trials started, driver RSS {rss / 2**20:.0f} MB",
            flush=True,
        )

    with PeakRss(progress=progress if verbose else None) as rss:
        tuner = make_tuner(
            spec,
            run_dir,
            concurrent,
            live=False,
            trainable=trivial,
            callbacks=tracking_callbacks(run),
        )
        tuner.fit()
        wall = time.perf_counter() - start
    return Figures(run_dir, spec, trials, wall, rss.peak_bytes / 2**20, rss.start_bytes / 2**20)


def main() -> None:
    """Run the search once and print its figures."""
    import ray

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--concurrent", type=int, default=CONCURRENT)
    # TPE's suggestion cost grows with the study; random keeps 10,000 trials within an hour
    # here while the driver holds the same trials, runs and records.
    parser.add_argument("--algorithm", choices=["tpe", "random"], default="tpe")
    args = parser.parse_args()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        f = run_many(args.trials, Path(d), args.concurrent, True, args.algorithm)
    ray.shutdown()
    print(
        f"{f.trials} trivial trials, {args.algorithm}, concurrency {args.concurrent}, ASHA, "
        "MLflow sqlite"
    )
    print(f"  wall            : {f.wall_s:9.1f} s ({f.trials_per_s:.2f} trials/s)")
    print(f"  driver RSS start: {f.start_rss_mb:9.0f} MB")
    print(f"  driver RSS peak : {f.peak_rss_mb:9.0f} MB  (goal <= 2048 MB)")


if __name__ == "__main__":
    main()
