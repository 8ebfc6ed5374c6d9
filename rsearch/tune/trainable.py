"""One trial: a Tune function trainable (the trial's driver) that runs a Ray Train TorchTrainer.

The driver holds almost no resources; the trial's CPUs and GPUs belong to its Train workers,
which run `rsearch.train.fit`. Every epoch, rank 0's metrics and the checkpoint Ray Train just
persisted travel back to the driver, which reports both to Tune.

Why not Ray's TuneReportCallback alone: it forwards metrics (the checkpoint only as a path
string), so Tune never holds a checkpoint; PBT then has nothing to exploit and Tune nothing to
restore a trial from. Here Tune gets, per epoch, a tiny checkpoint that points at the Train
checkpoint. Every restore (a retried trial, `rsearch resume`, a PBT exploit) goes through
Tune: the driver reads the pointer and the new TorchTrainer's workers start from it.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params
from rsearch.tune.optuna_searcher import PARAMS
from rsearch.tune.rungs import with_ticks

CHECKPOINT_FILE = "checkpoint.pt"
POINTER_FILE = "train_checkpoint.json"
POLL_S = 0.5


@dataclass(frozen=True)
class TrialSetup:
    """What every trial driver needs besides its sampled parameters."""

    base: dict[str, Any]
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    max_failures: int
    train_storage: str

    @classmethod
    def from_spec(cls, spec: SearchSpec, train_storage: str) -> TrialSetup:
        """The setup of a spec's trials, their Train runs stored under train_storage."""
        res = spec.resources
        return cls(
            base=spec.base.model_dump(mode="json"),
            workers=res.workers_per_trial,
            cpus_per_worker=res.cpus_per_worker,
            gpus_per_worker=res.gpus_per_worker,
            max_failures=spec.search.max_failures,
            train_storage=train_storage,
        )

    def recipe(self, params: dict[str, Any]) -> Recipe:
        """The trial's recipe: the base with the sampled values applied."""
        return apply_params(Recipe.model_validate(self.base), params)


def trial_driver(config: dict[str, Any], setup: TrialSetup) -> None:
    """Tune function trainable: train one trial's recipe on Ray Train workers."""
    import ray.tune
    from ray.util.queue import Queue

    recipe = setup.recipe(config[PARAMS])
    trial_id = ray.tune.get_context().get_trial_id()
    resume_from = pointed_checkpoint(ray.tune.get_checkpoint())
    reports: Queue = Queue(actor_options={"num_cpus": 0})
    trainer = _trainer(setup, recipe, trial_id, resume_from, reports)
    outcome: dict[str, BaseException] = {}

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as e:  # re-raised in the driver's thread below
            outcome["error"] = e

    worker = threading.Thread(target=fit, name=f"rsearch-train-{trial_id}", daemon=True)
    worker.start()
    while worker.is_alive() or not reports.empty():
        try:
            metrics, train_checkpoint = reports.get(timeout=POLL_S)
        except queue.Empty:
            continue
        _report_to_tune(metrics, train_checkpoint)
    if "error" in outcome:
        raise outcome["error"]


def _trainer(
    setup: TrialSetup, recipe: Recipe, trial_id: str, resume_from: str | None, reports: Any
) -> Any:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from rsearch.tune.forward import ForwardReports

    use_gpu = setup.gpus_per_worker > 0
    per_worker: dict[str, float] = {"CPU": setup.cpus_per_worker}
    if use_gpu:
        per_worker["GPU"] = setup.gpus_per_worker
    return TorchTrainer(
        worker_loop,
        train_loop_config={
            "recipe": recipe.model_dump(mode="json"),
            "cpus": setup.cpus_per_worker,
            "resume_from": resume_from,
        },
        scaling_config=ScalingConfig(
            num_workers=setup.workers, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            # A new Train run per driver start: restores come from Tune's checkpoint, never
            # from an older run of the same trial (a PBT exploit must win over it).
            name=f"trial-{trial_id}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
            storage_path=setup.train_storage,
            callbacks=[ForwardReports(reports, setup.train_storage)],  # type: ignore[list-item]
            # Two, so a checkpoint another trial is exploiting is not deleted under it.
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=setup.max_failures),
        ),
    )


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


def worker_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: start from the trial's checkpoint if it has one, then fit."""
    import ray.train

    from rsearch.train import fit

    recipe = Recipe.model_validate(config["recipe"])
    with tempfile.TemporaryDirectory(prefix="rsearch-ckpt-") as local:
        # Ray Train's own restore (a worker failure inside this run) comes first, then the
        # checkpoint Tune handed the driver.
        start = ray.train.get_checkpoint()
        if start is None and config.get("resume_from"):
            start = ray.train.Checkpoint(config["resume_from"])
        if start is not None:
            with start.as_directory() as src:
                _copy(Path(src) / CHECKPOINT_FILE, Path(local) / CHECKPOINT_FILE)

        def report(metrics: dict[str, float | str], checkpoint_dir: str | None) -> None:
            checkpoint = (
                ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
            )
            ray.train.report(metrics, checkpoint=checkpoint)

        # Ray starts workers with OMP_NUM_THREADS=1; torch gets a thread per CPU the worker holds.
        fit(recipe, report, checkpoint_dir=local, threads=max(1, int(config["cpus"])))


def _copy(src: Path, dst: Path) -> None:
    if src.is_file():
        dst.write_bytes(src.read_bytes())
