"""A Ray Train run that stays up from trial to trial: start-up is paid once per trial actor.

Starting a TorchTrainer costs ~10 s before the first line of training code runs (a controller
actor, a placement group, a worker process that imports torch and timm), more than a short
trial's first epoch. Tune reuses the trial driver's actor (`reuse_actors`), and the driver
keeps its Train run: the run's workers loop over jobs posted on a `TrialBoard`, one trial after
another, each from a clean `rsearch.train.fit` (fresh model, optimiser and generators: nothing
of one trial leaks into the next but the warm process and its cached data).

Per epoch, rank 0 posts its metrics and the checkpoint Ray Train persisted; every rank then
waits for the driver's decision, which comes once Tune has taken the result: train on, or stop
(a scheduler's verdict). A stopped job ends at that epoch boundary, so the next trial starts
on a free worker group at once. Failures keep Ray Train's and Tune's meaning: an exception in
training ends the job with its error (the driver raises it, Tune retries the trial); one
worker stays up for the next job, several fail their group (their ranks may have parted in a
collective) and Ray Train restarts it; a lost worker process or node is restarted by Ray
Train and its workers resume the job from its last checkpoint.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from rsearch.spec.recipe import Recipe

CHECKPOINT_FILE = "checkpoint.pt"
POLL_S = 0.5
"""Longest wait of one call on the board: bounds how late either side notices the other died."""
CLOSE_WAIT_S = 30.0
"""How long a stopping driver waits for its Train run to end cleanly before its actor goes."""
KEEP_CHECKPOINTS = 2
"""Checkpoints kept per job: two, so one another trial is exploiting is not deleted under it."""


class TrialStopped(Exception):
    """Raised inside fit's report callback when the driver stopped the trial."""


class TrainRunEnded(RuntimeError):
    """The resident Train run ended while a trial still needed it."""


# --- the driver's side ---------------------------------------------------------------------------


class ResidentRun:
    """One Train run of trial workers, owned by this trial-driver process."""

    def __init__(self, setup: Any, trainer_for: Any, first_trial: str) -> None:
        """Start the run.

        Args:
            setup: The TrialSetup it trains with (another setup needs another run).
            trainer_for: `(board, run name) -> TorchTrainer` running `resident_loop`.
            first_trial: The trial it starts for (the run is named after it).
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from rsearch.tune.board import TrialBoard

        self.setup = setup
        # On the driver's node: it lives and dies with the driver, never with a worker node.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.board: Any = (
            ray.remote(TrialBoard)
            .options(num_cpus=0, max_concurrency=64, scheduling_strategy=here)
            .remote()
        )
        name = f"trial-{first_trial}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self._trainer = trainer_for(self.board, name)
        self._outcome: dict[str, BaseException] = {}
        self._thread = threading.Thread(target=self._fit, name=f"rsearch-{name}", daemon=True)
        self._thread.start()

    def _fit(self) -> None:
        try:
            self._trainer.fit()
        except BaseException as e:  # raised to the trial that needed the run
            self._outcome["error"] = e

    @property
    def alive(self) -> bool:
        """True while the Train run is up."""
        return self._thread.is_alive()

    def raise_if_ended(self) -> None:
        """Raise the Train run's error (or TrainRunEnded) if it is no longer up."""
        if self.alive:
            return
        if "error" in self._outcome:
            raise self._outcome["error"]
        raise TrainRunEnded("the trial's Ray Train run ended before the trial did")

    def close(self) -> None:
        """Let the workers leave their loop (the run then ends by itself)."""
        self.board.close.remote()

    def join(self, timeout: float) -> None:
        """Wait up to timeout seconds for the Train run to end."""
        self._thread.join(timeout)


_resident: ResidentRun | None = None


def resident_run(setup: Any, trainer_for: Any, trial_id: str) -> ResidentRun:
    """This process's Train run for setup: the running one, or a new one."""
    global _resident
    if _resident is not None and (not _resident.alive or _resident.setup != setup):
        _resident.close()
        _resident = None
    if _resident is None:
        _resident = ResidentRun(setup, trainer_for, trial_id)
    return _resident


def forget_resident(wait_s: float = 0.0) -> None:
    """Close this process's run and drop it, waiting up to wait_s for it to end.

    Called when the run failed (the next trial starts a new one) and when Tune stops the
    driver's actor: a run left to die with its actor would log its workers' deaths as a
    training failure.
    """
    global _resident
    if _resident is not None:
        _resident.close()
        _resident.join(wait_s)
    _resident = None


def follow_job(run: ResidentRun, seq: int, on_result: Any) -> None:
    """Relay a job's epochs to on_result(metrics, checkpoint) until the job ends.

    After each epoch on_result returns (Tune took the result: train on) or raises (Tune
    stopped the trial: SystemExit, or anything else); either way the workers hear of it.

    Raises:
        TrialFailed: training raised; its traceback is the message.
        TrainRunEnded, or the Train run's own error: the run died under the job.
    """
    import ray

    index = 0
    try:
        while True:
            event = ray.get(run.board.next_event.remote(seq, index, POLL_S))
            if event is None:
                run.raise_if_ended()
                continue
            index += 1
            kind, value, checkpoint = event
            if kind == "end":
                if value is not None:
                    raise TrialFailed(value)
                return
            on_result(value, checkpoint)
            run.board.decide.remote(seq, int(value["epoch"]), True)
    except BaseException:
        run.board.stop.remote(seq)  # the workers stop at the epoch boundary they wait at
        raise


class TrialFailed(RuntimeError):
    """Training raised on a worker; the message is its traceback."""


# --- the workers' side ---------------------------------------------------------------------------


def resident_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: take the board's jobs one after another and train each."""
    import ray

    board = config["board"]
    done = 0
    while True:
        job = ray.get(board.take_job.remote(done, POLL_S))
        if job is None:
            continue
        if job.get("close"):
            return
        run_job(job, board, config)
        done = job["seq"]


def run_job(job: dict[str, Any], board: Any, config: dict[str, Any]) -> None:
    """Train one job from its checkpoint (if any), reporting every epoch to Train and the board.

    Raises:
        Exception: whatever training raised on several workers, after the job's end was
            posted with it (Ray Train then restarts the worker group, whose ranks may have
            parted in a collective). A single worker posts the error and stays up.
    """
    import ray
    import ray.train

    from rsearch.train import fit

    recipe = Recipe.model_validate(job["recipe"])
    report = _Reporter(job, board, recipe.epochs, config.get("train_storage"))
    with tempfile.TemporaryDirectory(prefix="rsearch-ckpt-") as local:
        if job["resume_from"]:
            with ray.train.Checkpoint(job["resume_from"]).as_directory() as src:
                _copy(Path(src) / CHECKPOINT_FILE, Path(local) / CHECKPOINT_FILE)
        try:
            # Ray starts workers with OMP_NUM_THREADS=1: torch gets a thread per CPU held.
            threads = max(1, int(config["cpus"]))
            fit(recipe, report, local, threads=threads, speed_cache=config.get("speed_cache"))
        except TrialStopped:
            pass
        except Exception:
            ray.get(board.post_end.remote(job["seq"], traceback.format_exc()))
            if report.world_size > 1:
                raise  # the other ranks may wait in a collective: Ray Train restarts the group
            return  # one worker: it stays up for the next trial, the failed one retried too
    if report.rank == 0:
        ray.get(board.post_end.remote(job["seq"], None))


class _Reporter:
    """fit's report callback inside a job: Ray Train, the board, then the driver's decision."""

    def __init__(self, job: dict[str, Any], board: Any, epochs: int, storage: str | None):
        import ray.train

        self.job, self.board, self.epochs, self.storage = job, board, epochs, storage
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self._storage_context = context.get_storage()
        self._kept: list[str] = []

    def __call__(self, metrics: dict[str, float | str], checkpoint_dir: str | None) -> None:
        import ray
        import ray.train

        epoch = int(metrics["epoch"])
        name = f"{self.job['trial_id']}-{self.job['token']}-e{epoch:04d}"
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
        if self.rank == 0:
            persisted = self._persisted(name) if checkpoint is not None else None
            ray.get(self.board.post_result.remote(self.job["seq"], dict(metrics), persisted))
            if persisted is not None:
                self._keep(name)
        if epoch < self.epochs and not self._go_on(epoch):
            raise TrialStopped

    def _go_on(self, epoch: int) -> bool:
        import ray

        while True:
            go = ray.get(self.board.wait_decision.remote(self.job["seq"], epoch, POLL_S))
            if go is not None:
                return bool(go)

    def _persisted(self, name: str) -> str:
        import ray.train

        from rsearch.tune.persisted import checkpoint_uri

        ctx = self._storage_context
        checkpoint = ray.train.Checkpoint(
            ctx.build_checkpoint_path_from_name(name), filesystem=ctx.storage_filesystem
        )
        return checkpoint_uri(checkpoint, self.storage)

    def _keep(self, name: str) -> None:
        """Delete the job's checkpoints older than the last KEEP_CHECKPOINTS."""
        ctx = self._storage_context
        self._kept.append(name)
        while len(self._kept) > KEEP_CHECKPOINTS:
            old = ctx.build_checkpoint_path_from_name(self._kept.pop(0))
            try:
                ctx.storage_filesystem.delete_dir(old)
            except OSError:  # already gone: nothing to free
                pass


def _copy(src: Path, dst: Path) -> None:
    if src.is_file():
        dst.write_bytes(src.read_bytes())
