"""The Tuner of a search: Optuna searcher, scheduler, concurrency, storage and callbacks.

`make_tuner` builds it for `run_search`, `resume_search` and `extend_search` (and for the
benchmarks, with their own trainable); `TuneExperiment` says where one Tune experiment of a
search lives; `trial_trainable` is the trial driver as Tune runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.rundir import SPEED_FILE, STUDY_FILE, TRAIN_DIR
from rsearch.settings import is_uri, uri_join
from rsearch.spec.search import SearchSpec
from rsearch.tune.optuna_searcher import OptunaSearcher
from rsearch.tune.schedulers import make_scheduler, pbt_param_space
from rsearch.tune.trainable import TrialSetup, trial_driver

DRIVER_MEMORY = 64 * 1024**2
"""Logical memory a trial driver reserves (bytes): a token, so its request is not empty."""


def trial_trainable(setup: TrialSetup) -> Any:
    """The trial driver as Tune runs it: its setup bound, a token of memory requested."""
    from ray import tune
    from ray.tune.trainable.function_trainable import wrap_function

    from rsearch.tune.resident import CLOSE_WAIT_S, forget_resident

    bound = wrap_function(tune.with_parameters(trial_driver, setup=setup), name="trial_driver")

    class TrialDriver(bound):  # type: ignore[misc,valid-type]
        """Closes the driver's resident Train run when Tune stops its actor."""

        def cleanup(self) -> None:
            try:
                super().cleanup()
            finally:
                forget_resident(CLOSE_WAIT_S)

    # The driver only waits on its Train workers, which hold the trial's CPUs and GPUs;
    # giving it a CPU as well would leave a 2-core machine room for one trial at a time.
    # Tune refuses an empty request, so the driver asks for a little memory, which every node has.
    return tune.with_resources(TrialDriver, {"cpu": 0, "memory": DRIVER_MEMORY})


@dataclass(frozen=True)
class TuneExperiment:
    """One Tune experiment of a search: where it lives and what it runs.

    A search is one Tune experiment, the run directory itself; each `rsearch extend` adds
    one inside it (`extend-<k>/`), so every experiment stays whole and restorable on its own
    (a second `Tuner.fit()` under the same name would overwrite the first one's `tuner.pkl`
    and leave Tune able to restore only the newer one).
    """

    storage_path: str
    """Tune's storage_path: the experiment is `<storage_path>/<name>` (a path or a URI)."""
    name: str
    """Tune's experiment name."""
    train_root: str
    """Where Ray Train keeps the trials' runs (one place for every experiment of a search)."""
    study_file: Path
    """The search's Optuna study."""
    trials: int
    """Trials this experiment runs."""
    extension: int = 0
    """0 for the search as started, k for its k-th extension."""

    @classmethod
    def first(
        cls, spec: SearchSpec, run_dir: Path, storage_root: str | None = None
    ) -> TuneExperiment:
        """The experiment a search starts with: its run directory (or `<URI>/<run name>/`)."""
        root = storage_root or str(run_dir.parent)
        return cls(
            storage_path=root,
            name=run_dir.name,
            train_root=uri_join(root, run_dir.name, TRAIN_DIR),
            study_file=run_dir / STUDY_FILE,
            trials=spec.search.num_trials,
        )


def make_tuner(
    spec: SearchSpec,
    run_dir: Path,
    max_concurrent: int,
    live: bool,
    trainable: Any = None,
    callbacks: list[Any] | None = None,
    storage_root: str | None = None,
    experiment: TuneExperiment | None = None,
    reuse_actors: bool = True,
) -> Any:
    """The Tuner of a search: Optuna searcher, scheduler, concurrency, storage, live table.

    Args:
        spec: The search.
        run_dir: Its run directory (Tune's experiment directory).
        max_concurrent: Trials at once.
        live: Show the live table.
        trainable: Replaces the Ray Train trial driver (benchmarks measure the machinery alone).
        callbacks: More Tune callbacks (MLflow tracking).
        storage_root: A URI that holds Tune's experiment and the Train runs (as
            `<storage_root>/<run_dir.name>/`) instead of run_dir's parent.
        experiment: The Tune experiment to run, when not the search's first (an extension).
        reuse_actors: Keep trial drivers (and their Train runs) from trial to trial; off,
            every trial starts a new Train run (benchmarks compare the two).
    """
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from rsearch.tune.ledger_hooks import LedgerCallback, SearchStopper
    from rsearch.tune.progress import LiveTable
    from rsearch.tune.study_callback import StudyCallback

    place = experiment or TuneExperiment.first(spec, run_dir, storage_root)
    # Local storage: every worker reaches the run directory (one node, or a shared mount).
    speed = None if is_uri(place.train_root) else str(run_dir / SPEED_FILE)
    setup = TrialSetup.from_spec(spec, place.train_root, speed)
    searcher = OptunaSearcher(
        spec, place.study_file, spec.budget_epochs, trials=place.trials, extension=place.extension
    )
    _ = searcher.study  # created before Tune's state: an experiment Tune can restore has its study
    # The ledger comes first: tracking reads its final record when the experiment ends.
    callbacks = [
        LedgerCallback(run_dir, spec),
        *(callbacks or []),
        *([LiveTable(spec)] if live else []),
    ]
    search_alg: Any = searcher
    param_space: dict[str, Any] = {}
    if spec.scheduler.type == "pbt":
        # PBT takes no search algorithm: Optuna proposes the population up front and a
        # callback keeps the study in step.
        population = searcher.initial_population(place.trials)
        search_alg = BasicVariantGenerator(points_to_evaluate=population)
        param_space = pbt_param_space(spec)  # Tune resolves the points against it
        callbacks.append(StudyCallback(searcher))
    return tune.Tuner(
        trainable or trial_trainable(setup),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=make_scheduler(spec),
            num_samples=place.trials,
            max_concurrent_trials=max_concurrent,
            # A driver keeps its Train run between trials (rsearch.tune.resident): a reused
            # actor starts its next trial on warm workers instead of a new Train run.
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=place.name,
            storage_path=place.storage_path,
            failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
            callbacks=callbacks,
            # Ends a trial at its epoch budget (PBT would pause it once more) or where the
            # search's compute budget cannot pay its next rung.
            stop=SearchStopper(run_dir, spec),
            verbose=0,
        ),
    )
