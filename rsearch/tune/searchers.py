"""Optuna sampler for a spec's `search.algorithm`, and the study it drives."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rsearch.rundir import open_study
from rsearch.spec.search import SearchSpec
from rsearch.tune.space import search_grid

if TYPE_CHECKING:
    import optuna


def make_sampler(spec: SearchSpec) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler the spec asks for."""
    import optuna.samplers as s

    search = spec.search
    seed = search.seed
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


def _tpe(seed: int, startup: int) -> optuna.samplers.BaseSampler:
    import optuna.samplers as s

    return s.TPESampler(
        seed=seed,
        n_startup_trials=startup,
        multivariate=True,
        group=True,  # conditional parameters form groups of their own
        constant_liar=True,  # concurrent trials spread out instead of piling up
    )


def directions(spec: SearchSpec) -> list[Literal["maximize", "minimize"]]:
    """Optuna directions, one per objective."""
    return ["maximize" if o.direction == "max" else "minimize" for o in spec.objective]


def create_study(spec: SearchSpec, study_file: Path | None = None) -> optuna.Study:
    """A study for the spec with its warm-start recipes queued first.

    Args:
        spec: The search.
        study_file: The run's journal file (`rsearch.rundir`); None keeps the study in memory
            (dry runs).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study_file is not None:
        study = open_study(study_file, spec.name, make_sampler(spec), directions(spec))
    else:
        study = optuna.create_study(sampler=make_sampler(spec), directions=directions(spec))
    if not study.trials:  # a resumed study already holds its warm starts
        for params in spec.search.warm_start:
            study.enqueue_trial(params, skip_if_exists=True)
    return study
