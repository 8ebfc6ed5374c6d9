"""run_search / resume_search: a spec becomes a Ray Tune experiment in a run directory.

A run directory (`<storage>/<name>-<timestamp>/`) is Tune's experiment directory plus
rsearch's own files: the spec as written and resolved, the Optuna study (`optuna.journal`), a
small manifest, and the Train runs of the trials (`train/`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rsearch.errors import UserError
from rsearch.rundir import MANIFEST, SPEC_AS_WRITTEN, SPEC_RESOLVED, load_run_spec, study_file
from rsearch.spec.search import SearchSpec
from rsearch.tune.cluster import ClusterResources, connect
from rsearch.tune.optuna_searcher import OptunaSearcher
from rsearch.tune.schedulers import make_scheduler, pbt_param_space
from rsearch.tune.trainable import TrialSetup, trial_driver

DRIVER_MEMORY = 64 * 1024**2
"""Logical memory a trial driver reserves (bytes): a token, so its request is not empty."""


@dataclass(frozen=True)
class RunInfo:
    """Where a search lives and how it ended."""

    run_dir: Path
    num_trials: int
    errors: list[str]


def trial_cpus(spec: SearchSpec) -> float:
    """CPUs one trial holds (all its workers)."""
    return spec.resources.workers_per_trial * spec.resources.cpus_per_worker


def concurrency(spec: SearchSpec, cluster: ClusterResources) -> int:
    """Trials that can run at once without any waiting for workers it cannot get.

    Raises:
        UserError: When a single trial needs more than the whole cluster has.
    """
    res = spec.resources
    limits = [spec.search.num_trials, spec.search.max_concurrent or spec.search.num_trials]
    cpus = trial_cpus(spec)
    if cpus > cluster.cpus + 1e-9:
        raise UserError(
            f"a trial needs {cpus:g} CPUs ({res.workers_per_trial} workers x "
            f"{res.cpus_per_worker:g}) but the cluster has {cluster.cpus:g}; lower "
            "resources.workers_per_trial or resources.cpus_per_worker"
        )
    limits.append(math.floor(cluster.cpus / cpus + 1e-9))
    if res.gpus_per_worker > 0:
        gpus = res.workers_per_trial * res.gpus_per_worker
        if gpus > cluster.gpus + 1e-9:
            raise UserError(
                f"a trial needs {gpus:g} GPUs but the cluster has {cluster.gpus:g}; lower "
                "resources.gpus_per_worker or resources.workers_per_trial"
            )
        limits.append(math.floor(cluster.gpus / gpus + 1e-9))
    return max(1, min(limits))


def new_run_dir(spec: SearchSpec, storage: str | None) -> Path:
    """A fresh, timestamped run directory under the storage root."""
    root = Path(storage or spec.storage).expanduser().resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{spec.name}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{spec.name}-{stamp}-{n}"
    return run_dir


def run_search(
    spec: SearchSpec,
    spec_path: Path | None = None,
    address: str | None = None,
    storage: str | None = None,
    live: bool = True,
    tracking_uri: str | None = None,
    track: bool = True,
) -> RunInfo:
    """Run a whole search and return where its results live.

    Args:
        spec: The validated spec.
        spec_path: The file it came from (copied into the run directory as written).
        address: A Ray cluster to join; None starts an embedded Ray sized to this machine.
        storage: Overrides the spec's storage root.
        live: Show the live trial table.
        tracking_uri: Overrides the spec's MLflow tracking URI (and MLFLOW_TRACKING_URI).
        track: Record the search in MLflow.
    """
    # Worker logs would tear through the live table; failures are summarised at the end.
    cluster = connect(address, log_to_driver=not live)
    max_concurrent = concurrency(spec, cluster)
    run_dir = new_run_dir(spec, storage)
    run_dir.mkdir(parents=True)
    _write_run_files(run_dir, spec, spec_path, address, tracking_uri if track else None, track)
    callbacks = _tracking(spec, run_dir, address) if track else []
    tuner = make_tuner(spec, run_dir, max_concurrent, live, callbacks=callbacks)
    return _fit(tuner, spec, run_dir)


def resume_search(run_dir: Path, address: str | None = None, live: bool = True) -> RunInfo:
    """Continue an interrupted search: unfinished trials resume, finished ones stay done."""
    from ray import tune

    spec = load_run_spec(run_dir)
    connect(address, log_to_driver=not live)
    if not tune.Tuner.can_restore(str(run_dir)):
        raise UserError(f"{run_dir} holds no Tune experiment state to resume from")
    setup = TrialSetup.from_spec(spec, str(run_dir / "train"))
    tuner = tune.Tuner.restore(
        str(run_dir),
        trainable=_trainable(setup),
        resume_unfinished=True,
        resume_errored=True,
    )
    return _fit(tuner, spec, run_dir)


def _tracking(spec: SearchSpec, run_dir: Path, address: str | None) -> list[Any]:
    from rsearch.tune.tracking_callback import TrackingCallback

    manifest = json.loads((run_dir / MANIFEST).read_text())
    spec_copy = run_dir / SPEC_AS_WRITTEN
    return [TrackingCallback(spec, run_dir, spec_copy, address, manifest.get("tracking_uri"))]


def _write_run_files(
    run_dir: Path,
    spec: SearchSpec,
    spec_path: Path | None,
    address: str | None,
    tracking_uri: str | None,
    track: bool,
) -> None:
    if spec_path is not None:
        shutil.copyfile(spec_path, run_dir / SPEC_AS_WRITTEN)
    (run_dir / SPEC_RESOLVED).write_text(
        yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    )
    manifest = {
        "name": spec.name,
        "spec_path": str(spec_path) if spec_path else None,
        "ray_address": address or "embedded",
        "tracking_uri": tracking_uri,
        "tracked": track,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _trainable(setup: TrialSetup) -> Any:
    from ray import tune

    # The driver only waits on its Train workers, which hold the trial's CPUs and GPUs;
    # giving it a CPU as well would leave a 2-core machine room for one trial at a time.
    # Tune refuses an empty request, so the driver asks for a little memory, which every node has.
    return tune.with_resources(
        tune.with_parameters(trial_driver, setup=setup), {"cpu": 0, "memory": DRIVER_MEMORY}
    )


def make_tuner(
    spec: SearchSpec,
    run_dir: Path,
    max_concurrent: int,
    live: bool,
    trainable: Any = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """The Tuner of a search: Optuna searcher, scheduler, concurrency, storage, live table.

    Args:
        spec: The search.
        run_dir: Its run directory (Tune's experiment directory).
        max_concurrent: Trials at once.
        live: Show the live table.
        trainable: Replaces the Ray Train trial driver (benchmarks measure the machinery alone).
        callbacks: More Tune callbacks (MLflow tracking).
    """
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from rsearch.tune.progress import LiveTable
    from rsearch.tune.study_callback import StudyCallback

    setup = TrialSetup.from_spec(spec, str(run_dir / "train"))
    searcher = OptunaSearcher(spec, study_file(run_dir), spec.budget_epochs)
    callbacks = [*(callbacks or []), *([LiveTable(spec)] if live else [])]
    search_alg: Any = searcher
    param_space: dict[str, Any] = {}
    if spec.scheduler.type == "pbt":
        # PBT takes no search algorithm: Optuna proposes the population up front and a
        # callback keeps the study in step.
        population = searcher.initial_population(spec.search.num_trials)
        search_alg = BasicVariantGenerator(points_to_evaluate=population)
        param_space = pbt_param_space(spec)  # Tune resolves the points against it
        callbacks.append(StudyCallback(searcher))
    return tune.Tuner(
        trainable or _trainable(setup),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=make_scheduler(spec),
            num_samples=spec.search.num_trials,
            max_concurrent_trials=max_concurrent,
            # A stopped trial's driver is still blocked in TorchTrainer.fit(); only a fresh
            # actor (the old one killed with its Train run) is safe. Costs ~2 s a trial.
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=run_dir.name,
            storage_path=str(run_dir.parent),
            failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
            callbacks=callbacks,
            # A trial at its budget is done; without this PBT would pause it once more.
            stop={"epoch": spec.budget_epochs},
            verbose=0,
        ),
    )


def _fit(tuner: Any, spec: SearchSpec, run_dir: Path) -> RunInfo:
    grid = tuner.fit()
    errors = [f"{Path(r.path).name}: {_first_line(r.error)}" for r in grid if r.error]
    return RunInfo(run_dir=run_dir, num_trials=len(grid), errors=errors)


def _first_line(error: BaseException) -> str:
    # Tune wraps the trial's exception; its last line names the real cause.
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
