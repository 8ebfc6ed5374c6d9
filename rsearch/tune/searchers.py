"""Optuna sampler for a spec's `search.algorithm`, and the study it drives."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rsearch.rundir import EXPERIMENT_ATTR, open_study
from rsearch.spec.search import SearchSpec
from rsearch.tune.space import search_grid

if TYPE_CHECKING:
    import optuna


def make_sampler(
    spec: SearchSpec, extension: int = 0, drawn: int = 0
) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler the spec asks for.

    Args:
        spec: The search.
        extension: 0 for the search as started; k for its k-th extension (`rsearch extend`),
            whose sampler is seeded apart, so it does not draw the run's random numbers again
            (a random search would repeat its first trials).
        drawn: Trials this experiment already proposed (a resumed one): seeded apart from
            the run it continues for the same reason, and the same way for every resume
            from the same point.
    """
    import optuna.samplers as s

    search = spec.search
    seed = search.seed if extension == 0 else extension_seed(search.seed, extension)
    if drawn:
        seed = resume_seed(seed, drawn)
    # TPE's default of 10 random start-up trials would spend a whole small search at random.
    startup = max(2, min(10, search.num_trials // 4))
    if search.algorithm == "tpe":
        with warnings.catch_warnings():
            # multivariate/group are marked experimental but are the documented way to handle
            # conditional spaces; the warning would print on every run.
            warnings.simplefilter("ignore")
            return _tpe(seed, startup)
    if search.algorithm == "cmaes":
        return s.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
    if search.algorithm == "gp":
        return s.GPSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
    if search.algorithm == "random":
        return s.RandomSampler(seed=seed)
    if search.algorithm == "grid":
        from rsearch.tune.grid import AskTellGridSampler

        return AskTellGridSampler(search_grid(spec), seed=seed)
    if search.algorithm == "nsga2":
        population = max(4, min(50, search.num_trials // 4))
        return s.NSGAIISampler(seed=seed, population_size=population)
    raise ValueError(f"unknown search algorithm {search.algorithm!r}")


def extension_seed(seed: int, extension: int) -> int:
    """The sampler seed of a search's k-th extension: fixed by the two, unrelated to either."""
    digest = hashlib.sha256(f"rsearch-extension/{seed}/{extension}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def resume_seed(seed: int, drawn: int) -> int:
    """The sampler seed of an experiment resumed after proposing `drawn` trials."""
    digest = hashlib.sha256(f"rsearch-resume/{seed}/{drawn}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _tpe(seed: int, startup: int) -> optuna.samplers.BaseSampler:
    import optuna.samplers as s

    return s.TPESampler(
        seed=seed,
        n_startup_trials=startup,
        multivariate=True,
        group=True,  # conditional parameters form groups of their own
        constant_liar=True,  # concurrent trials spread out instead of piling up
    )


def _proposed_by(study: optuna.Study, extension: int) -> int:
    """How many of the study's trials the given experiment of the search proposed."""
    trials = study.get_trials(deepcopy=False)
    return sum(t.user_attrs.get(EXPERIMENT_ATTR, 0) == extension for t in trials)


def directions(spec: SearchSpec) -> list[Literal["maximize", "minimize"]]:
    """Optuna directions, one per objective."""
    return ["maximize" if o.direction == "max" else "minimize" for o in spec.objective]


def create_study(
    spec: SearchSpec, study_file: Path | None = None, extension: int = 0, must_exist: bool = False
) -> optuna.Study:
    """A study for the spec with its warm-start recipes queued first.

    Args:
        spec: The search.
        study_file: The run's journal file (`rsearch.rundir`); None keeps the study in memory
            (dry runs). An existing study is loaded, its trials seen by the sampler.
        extension: Which extension of the search proposes (see `make_sampler`).
        must_exist: Load the study, never create it (a restored searcher: a missing study
            means the wrong file or name, and a fresh one would silently start over).

    Raises:
        rsearch.rundir.StudyNotFound: With must_exist, when the study does not exist.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(spec, extension)
    if study_file is not None:
        creating = None if must_exist else directions(spec)
        study = open_study(study_file, spec.name, sampler, creating)
        drawn = _proposed_by(study, extension)
        if drawn:  # a resumed experiment: a fresh sampler would replay its first proposals
            study.sampler = make_sampler(spec, extension, drawn)
    else:
        study = optuna.create_study(sampler=sampler, directions=directions(spec))
    if not study.trials:  # a resumed study already holds its warm starts
        for params in spec.search.warm_start:
            study.enqueue_trial(params, skip_if_exists=True)
    return study
