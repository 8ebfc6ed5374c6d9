"""Fixtures of the tracking tests: a real SQLite MLflow store, a real spec, a simulated search."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rsearch.spec import SearchSpec, load_spec
from rsearch.spec.space_paths import apply_params
from rsearch.tracking.spec_params import resolved_spec, search_settings

EXPERIMENT = "rsearch-tests"

SPEC = """\
# A tiny search used by the tracking tests.
name: track-demo
objective: {metric: val_top1, mode: max}
search: {algorithm: tpe, num_trials: 3, max_concurrent: 2, seed: 0}
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
resources: {workers_per_trial: 1, cpus_per_worker: 1}
base:
  model: {name: resnet18}
  data: {dataset: digits, image_size: 32, batch_size: 64}
  optim: {name: sgd, lr: 0.05}
  epochs: 3
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
  loss.label_smoothing: {type: float, low: 0.0, high: 0.2}
"""


@dataclass
class Trial:
    """A simulated trial: its id, searched values, recipe and per-epoch metrics."""

    trial_id: str
    searched: dict[str, Any]
    recipe: dict[str, Any]
    epochs: list[dict[str, Any]]


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    """The spec as written, in its own folder."""
    path = tmp_path / "specs" / "track-demo.yaml"
    path.parent.mkdir()
    path.write_text(SPEC)
    return path


@pytest.fixture
def spec(spec_file: Path) -> SearchSpec:
    """The loaded spec."""
    return load_spec(spec_file)


@pytest.fixture(scope="session")
def ram_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch directory in memory where the machine has one (/dev/shm), else on disk.

    SQLite syncs to disk on every commit: on a busy shared disk MLflow's schema migrations
    alone took 17 s here, 1.6 s in memory.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("ram")
        return
    path = Path(tempfile.mkdtemp(prefix="rsearch-tracking-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def store(ram_dir: Path) -> str:
    """A SQLite store shared by the tests (creating one costs seconds); tests keep apart by
    using experiments of their own."""
    return f"sqlite:///{ram_dir / 'shared' / 'mlflow.db'}"


@pytest.fixture
def experiment(request: pytest.FixtureRequest) -> str:
    """An experiment name of this test's own."""
    return f"{EXPERIMENT}-{request.node.name}"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The search's run directory."""
    path = tmp_path / "runs" / "track-demo-20260101-000000"
    path.mkdir(parents=True)
    return path


def make_trial(spec: SearchSpec, trial_id: str, lr: float, smoothing: float, epochs: int) -> Trial:
    """A trial whose metrics improve with each epoch (and with a larger lr)."""
    searched = {"optim.lr": lr, "loss.label_smoothing": smoothing}
    recipe = apply_params(spec.base, searched).model_dump(mode="json")
    rows = [
        {
            "val_top1": round(0.5 + 0.1 * e + lr, 4),
            "val_loss": round(1.0 / e, 4),
            "epoch": e,
            "trial_id": trial_id,  # not a metric: strings are skipped
            "done": False,  # not a metric: booleans are skipped
            "config": {"optim.lr": lr},  # not a metric: mappings are skipped
        }
        for e in range(1, epochs + 1)
    ]
    return Trial(trial_id, searched, recipe, rows)


@pytest.fixture
def trials(spec: SearchSpec) -> list[Trial]:
    """Three trials: one runs to the end, one is pruned after 1 epoch, one fails at epoch 2."""
    return [
        make_trial(spec, "trial_00000", 0.1, 0.05, 3),
        make_trial(spec, "trial_00001", 0.01, 0.1, 1),
        make_trial(spec, "trial_00002", 0.2, 0.0, 2),
    ]


def start(recorder: Any, spec: SearchSpec, spec_file: Path, run_dir: Path) -> str | None:
    """`start_search` as the Tune layer calls it."""
    return recorder.start_search(
        run_dir,
        spec.name,
        settings=search_settings(spec),
        spec_resolved=resolved_spec(spec),
        spec_written=spec_file,
    )


def write_checkpoint(run_dir: Path, trial_id: str) -> Path:
    """A small checkpoint file standing in for a trial's last Train checkpoint (in the run
    directory, as Train's are: checkpoints elsewhere are never uploaded)."""
    path = run_dir / "train" / trial_id / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights of " + trial_id.encode())
    return path


def simulate_search(
    recorder: Any,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    trials: list[Trial],
    between: Callable[[int], None] = lambda epoch: None,
) -> None:
    """Record a whole search the way the Tune callback will: finished, pruned, failed trial.

    Args:
        recorder: The SearchRecorder.
        spec: The spec.
        spec_file: The spec as written.
        run_dir: The run directory (checkpoints are written in it).
        trials: finished, pruned and failed trial, in that order.
        between: Called before each epoch's results (an outage test stops the server there).
    """
    start(recorder, spec, spec_file, run_dir)
    for t in trials:
        recorder.trial_started(t.trial_id, t.recipe, t.searched)
    for epoch in range(1, 4):
        between(epoch)
        for t in trials:
            if epoch <= len(t.epochs):
                recorder.trial_result(t.trial_id, t.epochs[epoch - 1], step=epoch)
    finished, pruned, failed = trials
    recorder.trial_ended(
        finished.trial_id,
        "FINISHED",
        {**finished.epochs[-1], "params_m": 11.2},
        checkpoint=write_checkpoint(run_dir, finished.trial_id),
    )
    recorder.trial_ended(
        pruned.trial_id,
        "KILLED",
        pruned.epochs[-1],
        pruned=True,
        checkpoint=write_checkpoint(run_dir, pruned.trial_id),
    )
    recorder.trial_ended(
        failed.trial_id, "FAILED", failed.epochs[-1], error="RuntimeError: CUDA out of memory"
    )
    recorder.end_search([finished.trial_id], {"val_top1": finished.epochs[-1]["val_top1"]})
