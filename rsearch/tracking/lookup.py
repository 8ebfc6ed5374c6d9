"""Finding a recorded search after the fact, for steps that run later (reports, plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from rsearch.errors import UserError
from rsearch.redact import redact_text
from rsearch.settings import resolve_tracking_uri, sqlite_path
from rsearch.tracking.runs import TAG_ROLE, TAG_SEARCH_ID, normalise_run_dir, search_id


def find_search_run(
    run_dir: str | Path, tracking_uri: str | None = None, experiment: str | None = None
) -> Run | None:
    """The parent run recorded for a run directory, None if there is none.

    Args:
        run_dir: The search's run directory, as given to `SearchRecorder.start_search`.
        tracking_uri: The store; None resolves it like `resolve_tracking_uri`.
        experiment: Look only in this experiment; None looks in all of them.
    """
    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    if db is not None and not db.exists():  # no store, no search: do not create one to look
        return None
    client = MlflowClient(tracking_uri=uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        ids = [found.experiment_id] if found else []
    else:
        ids = [e.experiment_id for e in client.search_experiments(max_results=50_000)]
    if not ids:
        return None
    key = search_id(normalise_run_dir(run_dir))
    runs = client.search_runs(
        ids,
        f"tags.`{TAG_SEARCH_ID}` = '{key}' and tags.`{TAG_ROLE}` = 'search'",
        run_view_type=ViewType.ACTIVE_ONLY,
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0] if runs else None


def log_search_artifacts(
    run_dir: str | Path,
    files: Sequence[Path],
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """Upload files (report plots, tables) to a recorded search's parent run.

    Args:
        run_dir: The search's run directory.
        files: Files or directories to upload.
        artifact_path: Folder inside the run's artifacts.
        tracking_uri: The store; None resolves it like `resolve_tracking_uri`.
        experiment: The search's experiment, if known.

    Returns:
        The parent run's id.

    Raises:
        UserError: When no run was recorded for `run_dir` or a file is missing.
    """
    uri = resolve_tracking_uri(tracking_uri)
    run = find_search_run(run_dir, uri, experiment)
    if run is None:
        raise UserError(f"no MLflow run was recorded for {run_dir} in {redact_text(uri)}")
    client = MlflowClient(tracking_uri=uri)
    for path in map(Path, files):
        if path.is_dir():
            client.log_artifacts(run.info.run_id, str(path), artifact_path)
        elif path.is_file():
            client.log_artifact(run.info.run_id, str(path), artifact_path)
        else:
            raise UserError(f"cannot log {path} to MLflow: no such file")
    return str(run.info.run_id)
