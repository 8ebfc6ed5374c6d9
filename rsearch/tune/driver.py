"""run_search / resume_search: a spec becomes a Ray Tune experiment in a run directory.

A run directory (`<storage>/<name>-<timestamp>-<6 hex>/`) is Tune's experiment directory plus
rsearch's own files: the spec as written and resolved, the Optuna study (`optuna.journal`), a
small manifest, and the Train runs of the trials (`train/`). Each `rsearch extend` adds a Tune
experiment of its own inside it (`extend-<k>/`, see `rsearch.tune.tuner.TuneExperiment`
and `rsearch.tune.extend`).

When the storage is a URI (s3://, gs://, ...), the run directory is a local control directory
(under `--local-dir`, default ./rsearch-runs) and Tune's experiment with the Train runs lives
at `<uri>/<name>-<timestamp>-<6 hex>/`, recorded in the manifest; see `rsearch.tune.storage`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rsearch.errors import UserError
from rsearch.redact import is_masked, redact_kept, redact_yaml_text
from rsearch.rundir import (
    RECORD_FILES,
    SPEC_AS_WRITTEN,
    SPEC_RESOLVED,
    Run,
    check_run_spec,
    create_run_dir,
    driver_lock,
    file_hash,
    new_manifest,
    open_run,
    open_study,
    read_manifest,
    spec_hash,
    write_atomic,
    write_manifest,
)
from rsearch.rundir.teachers import resolve_spec_teachers
from rsearch.settings import (
    StorageRoot,
    resolve_storage,
    resolve_tracking_uri,
    uri_join,
)
from rsearch.spec.search import SearchSpec
from rsearch.tune.capacity import concurrency
from rsearch.tune.cluster import ClusterResources, connect
from rsearch.tune.storage import download_trial_results, exists, make_dir, upload_files
from rsearch.tune.trainable import TrialSetup
from rsearch.tune.tuner import make_tuner, trial_trainable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """Where a search lives and how it ended."""

    run_dir: Path
    num_trials: int
    errors: list[str]
    experiment: str | None = None
    """Tune's experiment URI when the storage is remote (None: the run directory itself)."""


def run_search(
    spec: SearchSpec,
    spec_path: Path | None = None,
    address: str | None = None,
    live: bool = True,
    track: bool = True,
    local_dir: str | None = None,
) -> RunInfo:
    """Run a whole search and return where its results live.

    Args:
        spec: The validated spec, `--storage` and `--tracking-uri` already applied to it
            (`load_spec(..., flags=...)`).
        spec_path: The file it came from (copied into the run directory as written).
        address: A Ray cluster to join; None starts an embedded Ray sized to this machine.
        live: Show the live trial table.
        track: Record the search in MLflow.
        local_dir: With a URI storage: the root of the local control directory
            (default ./rsearch-runs).

    Raises:
        UserError: When the cluster or a URI storage cannot be reached.
    """
    # Teachers named by an earlier search become checkpoint paths in the spec the run
    # directory records, so every trial (and a resume) trains with the same files.
    spec = resolve_spec_teachers(spec)
    root = resolve_storage(spec.storage, local_dir)
    if root.remote is not None:
        check_storage(root.remote)  # before Ray starts: a wrong bucket fails in a second
    cluster = connect(address, log_to_driver=not live)
    # A trial larger than the cluster can hold is refused before any file is written.
    max_concurrent = concurrency(spec, cluster)
    run_dir = create_run_dir(root.local, spec.name, taken=_taken_at(root.remote))
    with driver_lock(run_dir):  # held from the directory's first moment to the search's end
        return _start_search(
            spec, spec_path, address, live, track, root, cluster, run_dir, max_concurrent
        )


def _taken_at(remote: str | None) -> Callable[[str], bool] | None:
    """Whether a run-directory name is in use at the storage URI (None: local storage)."""
    if remote is None:
        return None
    return lambda name: exists(uri_join(remote, name))


def _start_search(
    spec: SearchSpec,
    spec_path: Path | None,
    address: str | None,
    live: bool,
    track: bool,
    root: StorageRoot,
    cluster: ClusterResources,
    run_dir: Path,
    max_concurrent: int,
) -> RunInfo:
    """`run_search` from its fresh run directory on, the driver lock held."""
    experiment = uri_join(root.remote, run_dir.name) if root.remote else None
    try:
        run = write_run_files(run_dir, spec, spec_path, address, track, root, experiment)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written is left behind
        raise
    if experiment is not None:
        publish_records(run, strict=True)
    record_plan(run, cluster)
    callbacks = tracking_callbacks(run) if track else []
    # run.spec, as its files hold it: Tune pickles what it is given into the run directory,
    # and nothing past this point needs the spec's credentials.
    tuner = make_tuner(
        run.spec, run_dir, max_concurrent, live, callbacks=callbacks, storage_root=root.remote
    )
    return fit_search(tuner, run)


def record_plan(run: Run, cluster: ClusterResources) -> None:
    """Price the search before it runs (`rsearch plan`) and keep the bill beside its spend.

    A plan that cannot be made (a recipe the estimate cannot price) is left out with a warning:
    the search itself decides whether the recipe trains.
    """
    from rsearch.plan import plan_search  # deferred: torch and timm
    from rsearch.tune.ledger_hooks import ledger_for

    try:
        plan = plan_search(run.spec, cluster.cpus, cluster.gpus)
    except UserError as e:
        log.warning("no plan for this search: %s", e)
        return
    ledger_for(run.path, run.spec).set_plan(plan.total_flops, plan.total_device_hours)


def resume_search(
    run_dir: Path, address: str | None = None, live: bool = True, force: bool = False
) -> RunInfo:
    """Continue an interrupted search: unfinished trials resume, finished ones stay done.

    An extended search resumes its latest extension's Tune experiment (the earlier ones had
    finished, or it could not have been extended). The run's spec is validated again and
    must be the one recorded (`rsearch.rundir.check_run_spec`); the study must exist.

    Args:
        run_dir: The search's run directory.
        address: A Ray cluster to join; None starts an embedded Ray sized to this machine.
        live: Show the live trial table.
        force: Resume with a spec changed since the search started (warned and recorded).

    Raises:
        UserError: When another driver holds the run directory (`rsearch.rundir.driver_lock`),
            its spec changed (without force), its study is missing, or there is nothing to
            resume; all before Ray starts.
    """
    path = run_dir.expanduser().resolve()
    read_manifest(path)  # no lock file is left in a directory that is no run directory
    with driver_lock(path):  # read under the lock: a driver may just have changed the run
        return _resume(check_run_spec(path, force), address, live)


def _resume(run: Run, address: str | None, live: bool) -> RunInfo:
    """`resume_search` once the driver lock is held and the spec checked."""
    from ray import tune

    check_tracking_credential(run)
    path = run.current_tune_path
    try:  # before Ray starts: a run with nothing to resume is told in a second
        restorable = tune.Tuner.can_restore(path)
    except OSError as e:
        hint = ""
        if is_masked(run.manifest.experiment or ""):
            hint = (
                "; its credentials are not kept in the run directory: give them in the "
                "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "GOOGLE_APPLICATION_CREDENTIALS, or an instance role)"
            )
        raise UserError(f"cannot read the search's storage at {path}: {e}{hint}") from None
    if not restorable:
        raise UserError(f"{path} holds no Tune experiment state to resume from")
    # The study the manifest names, never a fresh one: a missing study is an error.
    open_study(run.study_file, run.manifest.name)
    connect(address, log_to_driver=not live)
    setup = TrialSetup.from_spec(run.spec, run.train_root)
    tuner = tune.Tuner.restore(
        path,
        trainable=trial_trainable(setup),
        resume_unfinished=True,
        resume_errored=True,
    )
    return fit_search(tuner, run)


def tracking_callbacks(run: Run) -> list[Any]:
    """The Tune callbacks that record the run in MLflow."""
    from rsearch.tune.tracking_callback import TrackingCallback

    check_tracking_credential(run)
    return [TrackingCallback(run)]


def check_tracking_credential(run: Run) -> None:
    """Fail before Ray starts when the run's MLflow store needs a credential nobody gave again.

    The run directory keeps the tracking URI masked (`rsearch.settings.usable_tracking_uri`);
    found missing only inside Tune's callbacks, it would end the search there.
    """
    from rsearch.tracking.reports import run_tracking_uri

    run_tracking_uri(run)


def write_run_files(
    run_dir: Path,
    spec: SearchSpec,
    spec_path: Path | None,
    address: str | None,
    track: bool,
    root: StorageRoot,
    experiment: str | None,
) -> Run:
    """Write a new run directory's records: the spec as written and resolved, the manifest.

    Every one is written with its credentials masked (`rsearch.redact`): the run directory is
    uploaded beside the storage and read by anyone it is shared with. The run returned is the
    one those files describe.

    Args:
        run_dir: The fresh run directory (`rsearch.rundir.create_run_dir`).
        spec: The validated spec, flags applied.
        spec_path: The file it came from, if any.
        address: The Ray cluster joined (None: embedded).
        track: Whether the search is recorded in MLflow.
        root: The storage root the directory was created under.
        experiment: Tune's experiment URI for URI storage, else None.
    """
    if spec_path is not None:
        written = redact_yaml_text(spec_path.read_text(encoding="utf-8"))
        write_atomic(run_dir / SPEC_AS_WRITTEN, written)
    resolved = redact_kept(spec.model_dump(mode="json"))
    write_atomic(run_dir / SPEC_RESOLVED, yaml.safe_dump(resolved, sort_keys=False))
    manifest = new_manifest(
        name=spec.name,
        spec_hash=spec_hash(resolved),
        spec_file_hash=file_hash(run_dir / SPEC_AS_WRITTEN),
        spec_path=str(spec_path) if spec_path else None,
        ray_address=address or "embedded",
        tracked=track,
        # Resolved once, absolute: `report`, `best` and `ui` find the store from anywhere.
        tracking_uri=resolve_tracking_uri(spec.tracking.uri) if track else None,
        storage_root=root.remote or str(root.local),
        experiment=experiment,
    )
    write_manifest(run_dir, manifest)
    return open_run(run_dir)


def fit_search(tuner: Any, run: Run) -> RunInfo:
    """Run a Tuner to its end; with URI storage, publish the records and fetch the results.

    Raises:
        StorageFull: A disk the search writes to filled up; `rsearch resume` carries on.
    """
    from rsearch.tune.disk_full import full_disk, quiet_full_disk_failures, storage_full
    from rsearch.tune.ledger_hooks import forget_ledger

    quiet_full_disk_failures()
    try:
        grid = tuner.fit()
    except Exception as e:
        if (filename := full_disk(e)) is None:
            raise
        raise storage_full(run.path, filename) from None
    finally:
        forget_ledger(run.path)
    for r in grid:  # a worker's checkpoint write reaches the driver as a failed trial
        if r.error is not None and (filename := full_disk(r.error)) is not None:
            raise storage_full(run.path, filename)
    errors = [f"{Path(r.path).name}: {_first_line(r.error)}" for r in grid if r.error]
    if run.manifest.experiment is not None:
        publish_records(run, strict=False)
    return RunInfo(
        run_dir=run.path, num_trials=len(grid), errors=errors, experiment=run.manifest.experiment
    )


def check_storage(experiment: str) -> None:
    """Fail in a second, before Ray starts, when a URI storage cannot be written."""
    try:
        make_dir(experiment)
    except (OSError, ValueError) as e:  # pyarrow: unreachable or refused; unknown scheme
        raise UserError(f"cannot write to the search's storage {experiment}: {e}") from None


def publish_records(run: Run, strict: bool) -> None:
    """Put the run's record files beside Tune's in the storage, and Tune's results here.

    Args:
        run: The run, its directory the local control directory.
        strict: Raise on failure (before the search); afterwards only warn, since every record
            is safe in run_dir and `rsearch resume` publishes again.
    """
    run_dir, experiment = run.path, run.tune_path
    try:
        upload_files([run_dir / n for n in RECORD_FILES if (run_dir / n).is_file()], experiment)
        if not strict:  # the latest experiment's results: the earlier ones are here already
            download_trial_results(run.current_tune_path, run.experiment_dirs[-1])
    except OSError as e:
        if strict:
            raise UserError(f"cannot write to the search's storage {experiment}: {e}") from None
        log.warning("could not sync %s with %s: %s", run_dir, experiment, e)


def _first_line(error: BaseException) -> str:
    # Tune wraps the trial's exception; its last line names the real cause.
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
