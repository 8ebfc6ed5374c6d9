"""extend_search: more trials for a finished search, in the same study and MLflow parent run.

The extension's trials are proposed by the search's own Optuna study (the journal in the run
directory), so the sampler conditions on every earlier trial, and each gets the next Optuna
number. They run as a Tune experiment of their own inside the run's (`extend-<k>/`, see
`rsearch.tune.tuner.TuneExperiment`), whose trials are recorded as children of the search's
MLflow parent run, which reopens and is closed again with the best trial of the whole study.
What the extension changed is appended to the run directory's `extensions.jsonl`; from then on
its spec is the search's (`rundir.open_run`), so `best`, `report` and `resume` follow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsearch.errors import UserError
from rsearch.rundir import (
    EXTENSIONS,
    SPEC_RESOLVED,
    Run,
    append_extension,
    driver_lock,
    new_extension,
    open_run,
    open_study,
    trial_views,
)
from rsearch.spec import extended_spec
from rsearch.tune.capacity import concurrency
from rsearch.tune.cluster import connect
from rsearch.tune.driver import (
    RunInfo,
    check_storage,
    fit_search,
    publish_records,
    tracking_callbacks,
)
from rsearch.tune.tuner import TuneExperiment, make_tuner


def extend_search(
    run_dir: Path,
    trials: int,
    overrides: Sequence[str] = (),
    address: str | None = None,
    live: bool = True,
) -> RunInfo:
    """Add trials to a finished search and run them.

    Args:
        run_dir: The search's run directory.
        trials: Trials to add (at least 1).
        overrides: `--set` overrides of the search's spec: narrowed space ranges,
            search.max_concurrent, search.max_failures, resources.* (`rsearch.spec.narrowing`).
        address: A Ray cluster to join; None starts an embedded Ray sized to this machine.
        live: Show the live trial table.

    Raises:
        UserError: For fewer than one trial, a directory that is no run directory, one
            another driver holds (`rsearch.rundir.driver_lock`), an override an extension may
            not make, a search that has not finished, or an unreachable cluster or storage;
            all but the last before Ray starts.
    """
    with driver_lock(open_run(run_dir).path):
        tuner, extended = prepare_extension(run_dir, trials, overrides, address, live)
        return fit_search(tuner, extended)


def prepare_extension(
    run_dir: Path,
    trials: int,
    overrides: Sequence[str] = (),
    address: str | None = None,
    live: bool = True,
) -> tuple[Any, Run]:
    """Everything `extend_search` does before its trials run; the arguments are the same.

    From its return on, the extension is recorded and its Tune experiment exists: a driver
    that dies before or while the trials run leaves an extension `rsearch resume` finishes.

    Returns:
        The extension's Tuner, and the run as extended.
    """
    if trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    run = open_run(run_dir)
    shown_as = run.path / (EXTENSIONS if run.extensions else SPEC_RESOLVED)
    spec = extended_spec(run.spec, overrides, trials, str(shown_as))
    refuse_unfinished(run)
    if run.manifest.experiment is not None:
        check_storage(run.tune_path)  # the manifest's URI has its credentials masked
    cluster = connect(address, log_to_driver=not live)
    max_concurrent = concurrency(spec, cluster, trials)
    extension = new_extension(run.extensions, spec, trials, overrides)
    extended = run.extended(extension)
    experiment = TuneExperiment(
        storage_path=run.tune_path,
        name=extension.experiment,
        train_root=run.train_root,
        study_file=run.study_file,
        trials=trials,
        extension=extension.number,
    )
    callbacks = tracking_callbacks(extended) if run.manifest.tracked else []
    tuner = make_tuner(
        spec, run.path, max_concurrent, live, callbacks=callbacks, experiment=experiment
    )
    # Recorded once the Tuner has written Tune's experiment state, so the experiment a record
    # names can always be resumed; before that, a crash leaves the search as it was.
    append_extension(run.path, extension)
    if run.manifest.experiment is not None:
        publish_records(extended, strict=True)
    return tuner, extended


def refuse_unfinished(run: Run) -> None:
    """Refuse a search that is still running or was interrupted: it must end first.

    A finished search has given each of its num_trials trials to a Tune trial, and none of
    them is still open in the study.

    Raises:
        UserError: Naming how far it got, and `rsearch resume` for an interrupted search.
    """
    views = trial_views(open_study(run.study_file, run.spec.name))
    ran = sum(t.tune_trial_id is not None for t in views)
    total = run.spec.search.num_trials
    unfinished = [str(t.number) for t in views if t.state in ("RUNNING", "WAITING")]
    if ran >= total and not unfinished:
        return
    where = f"; trial(s) {', '.join(unfinished)} not finished" if unfinished else ""
    raise UserError(
        f"{run.path} has not finished ({ran} of {total} trials started{where}): if it still "
        f"runs, wait for it; if it was interrupted, finish it with `rsearch resume {run.path}` "
        "and extend it then"
    )
