"""One trial: a Tune function trainable (the trial's driver) that trains it on Ray Train workers.

The driver holds almost no resources; the trial's CPUs and GPUs belong to its Train workers,
which run `rsearch.train.fit`. The Train run outlives the trial: Tune reuses the driver's actor
and the driver posts each new trial to the same workers (`rsearch.tune.resident`), so only a
driver's first trial pays Ray Train's start-up. Every epoch, rank 0's metrics and the
checkpoint Ray Train just persisted travel back to the driver, which reports both to Tune.

Why not Ray's TuneReportCallback alone: it forwards metrics (the checkpoint only as a path
string), so Tune never holds a checkpoint; PBT then has nothing to exploit and Tune nothing to
restore a trial from. Here Tune gets, per epoch, a tiny checkpoint that points at the Train
checkpoint. Every restore (a retried trial, `rsearch resume`, a PBT exploit) goes through
Tune: the driver reads the pointer and the workers start the trial's job from it.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params
from rsearch.tune.optuna_searcher import PARAMS
from rsearch.tune.rungs import with_ticks

POINTER_FILE = "train_checkpoint.json"
STARTUP_METRIC = "startup_s"
"""The trial driver's own metric (rsearch.spec.metrics), on a trial's first result."""


@dataclass(frozen=True)
class TrialSetup:
    """What every trial driver needs besides its sampled parameters."""

    base: dict[str, Any]
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    max_failures: int
    train_storage: str
    speed_cache: str | None = None
    """The run's inference-speed cache file, when every worker reaches the run directory."""

    @classmethod
    def from_spec(
        cls, spec: SearchSpec, train_storage: str, speed_cache: str | None = None
    ) -> TrialSetup:
        """The setup of a spec's trials, their Train runs stored under train_storage."""
        res = spec.resources
        return cls(
            base=spec.base.model_dump(mode="json"),
            workers=res.workers_per_trial,
            cpus_per_worker=res.cpus_per_worker,
            gpus_per_worker=res.gpus_per_worker,
            max_failures=spec.search.max_failures,
            train_storage=train_storage,
            speed_cache=speed_cache,
        )

    def recipe(self, params: dict[str, Any]) -> Recipe:
        """The trial's recipe: the base with the sampled values applied."""
        return apply_params(Recipe.model_validate(self.base), params)


def trial_driver(config: dict[str, Any], setup: TrialSetup) -> None:
    """Tune function trainable: train one trial's recipe on this driver's Train workers."""
    import ray
    import ray.tune

    from rsearch.tune.resident import TrialFailed, follow_job, forget_resident, resident_run

    started = time.monotonic()
    recipe = setup.recipe(config[PARAMS])
    trial_id = ray.tune.get_context().get_trial_id()
    resume_from = pointed_checkpoint(ray.tune.get_checkpoint())
    run = resident_run(setup, lambda board, name: _trainer(setup, board, name), trial_id)
    token = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    seq = ray.get(
        run.board.post_job.remote(trial_id, recipe.model_dump(mode="json"), resume_from, token)
    )
    try:
        follow_job(run, seq, StartupClock(started))
    except TrialFailed:
        raise
    except Exception:
        forget_resident()  # the Train run itself failed: the next trial starts a new one
        raise


def _trainer(setup: TrialSetup, board: Any, name: str) -> Any:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from rsearch.tune.resident import resident_loop

    use_gpu = setup.gpus_per_worker > 0
    per_worker: dict[str, float] = {"CPU": setup.cpus_per_worker}
    if use_gpu:
        per_worker["GPU"] = setup.gpus_per_worker
    return TorchTrainer(
        resident_loop,
        train_loop_config={
            "board": board,
            "cpus": setup.cpus_per_worker,
            "train_storage": setup.train_storage,
            "speed_cache": setup.speed_cache,
        },
        scaling_config=ScalingConfig(
            num_workers=setup.workers, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            name=name,
            storage_path=setup.train_storage,
            # The workers keep each job's last two checkpoints themselves (resident.py):
            # Ray Train's own count would span every trial the run trains.
            checkpoint_config=CheckpointConfig(num_to_keep=None),
            failure_config=FailureConfig(max_failures=setup.max_failures),
        ),
    )


class StartupClock:
    """Reports results to Tune, the first with `startup_s`: how long the trial took to start.

    Measured on the driver's clock alone: from the driver's start to the start of the first
    epoch it reports (the result's arrival less the epoch's own `epoch_s`). It covers what
    a trial waits for: a Train run (or a warm one's next job), the model, the data, and a
    resumed trial's checkpoint.
    """

    def __init__(self, started: float):
        """Args: started: time.monotonic() when the driver began."""
        self.started: float | None = started

    def __call__(self, metrics: dict[str, Any], checkpoint: str | None) -> None:
        """Report one epoch's result (and checkpoint pointer) to Tune."""
        if self.started is not None:
            waited = time.monotonic() - self.started - float(metrics.get("epoch_s", 0.0))
            metrics = {**metrics, STARTUP_METRIC: max(0.0, waited)}
            self.started = None
        _report_to_tune(metrics, checkpoint)


def _report_to_tune(metrics: dict[str, Any], train_checkpoint: str | None) -> None:
    import ray.tune

    metrics = with_ticks(metrics)  # what a compute-unit scheduler counts

    if train_checkpoint is None:
        ray.tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="rsearch-pointer-") as d:
        (Path(d) / POINTER_FILE).write_text(json.dumps({"path": train_checkpoint}))
        ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(d))


def pointed_checkpoint(checkpoint: Any) -> str | None:
    """The Train checkpoint a Tune checkpoint points at (None for a fresh trial)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        pointer = Path(d) / POINTER_FILE
        return str(json.loads(pointer.read_text())["path"]) if pointer.is_file() else None
