"""The run's Optuna study: opening it, the names stored on its trials, and bookkeeping.

One function opens a run's study (the searcher creates it, readers load it); one place names
the user attributes rsearch stores on Optuna trials; and `TrialBook` is the one adapter over
Optuna internals (the study's storage and id), which let the searcher record a trial by its
number without building Trial objects (they redo the sampler's relative sampling on
creation: tens of ms per call at a thousand trials). `tests/rundir/test_optuna_adapter.py`
fails when a supported Optuna version changes what the adapter relies on.

Optuna is imported inside the functions: reading a manifest must stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rsearch.errors import UserError

if TYPE_CHECKING:
    import optuna

TUNE_TRIAL_ID_ATTR = "tune_trial_id"
"""The Tune trial that ran (or runs) the Optuna trial."""
METRICS_ATTR = "metrics"
"""The trial's final summary metrics (see `rsearch.spec.metrics`), one dict."""
SCALING_ATTR = "scaling"
"""The scaling strategy's own numbers for the trial (alpha, beta, gamma, ...)."""
EXPERIMENT_ATTR = "experiment"
"""Which Tune experiment of the search ran the trial: 0 as started, k its k-th extension
(absent on trials of runs before it was recorded: 0)."""
REJECTED_ATTR = "rejected"
"""Why a proposal was refused before training (PRUNED without a Tune trial)."""
COST_ATTR = "cost"
"""A refused proposal's measured cost (params, GFLOPs) against the constraints."""


class StudyNotFound(UserError):
    """The run directory holds no study (the search has not started) or not this one."""


def journal_storage(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's journal-file storage at path: append-only, safe for several readers."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def open_study(
    study_file: Path,
    name: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    directions: Sequence[Literal["maximize", "minimize"]] | None = None,
) -> optuna.Study:
    """A run's Optuna study, kept in its journal file.

    Args:
        study_file: The journal file (`Run.study_file`).
        name: The study's name (the spec's name).
        sampler: The sampler that proposes trials; readers leave it out.
        directions: Given by the search driver: create the study when it does not exist yet.
            Without them the study must exist (readers).

    Raises:
        StudyNotFound: For a reader, when the file or the study in it does not exist.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if directions is not None:
        return optuna.create_study(
            study_name=name,
            storage=journal_storage(study_file),
            sampler=sampler,
            directions=list(directions),
            load_if_exists=True,
        )
    if not study_file.is_file():
        raise StudyNotFound(
            f"{study_file.parent} has no Optuna study ({study_file.name}); did the search start?"
        )
    try:
        return optuna.load_study(
            study_name=name, storage=journal_storage(study_file), sampler=sampler
        )
    except KeyError:  # Optuna's answer for a study name the storage does not hold
        raise StudyNotFound(f"{study_file} holds no study named {name!r}") from None


class TrialBook:
    """Bookkeeping on a study's trials by number, through Optuna's storage.

    The only code that touches Optuna internals (`Study._storage`, `Study._study_id`).
    """

    def __init__(self, study: optuna.Study):
        self._storage: Any = study._storage
        self._study_id: int = study._study_id

    def _trial_id(self, number: int) -> int:
        return int(self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number))

    def set_user_attr(self, number: int, key: str, value: Any) -> None:
        """Store a user attribute on trial `number`."""
        self._storage.set_trial_user_attr(self._trial_id(number), key, value)

    def set_intermediate_value(self, number: int, step: int, value: float) -> None:
        """Record an intermediate objective value of trial `number` at step.

        Raises:
            optuna.exceptions.UpdateFinishedTrialError: When the trial has finished.
        """
        self._storage.set_trial_intermediate_value(self._trial_id(number), step, value)

    def state(self, number: int) -> optuna.trial.TrialState:
        """Trial `number`'s state."""
        return self._storage.get_trial(self._trial_id(number)).state
