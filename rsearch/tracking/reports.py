"""Logging a search's report to its MLflow parent run, found through the run directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rsearch.errors import UserError
from rsearch.redact import redact_text
from rsearch.rundir import Run
from rsearch.settings import resolve_tracking_uri, usable_tracking_uri
from rsearch.tracking.lookup import log_search_artifacts

REPORT_ARTIFACT_PATH = "report"
"""Folder of the search's MLflow parent run the report and its figures go to."""


def run_tracking_uri(run: Run) -> str | None:
    """The MLflow store a search recorded into (None: untracked), from its manifest.

    Manifests written before the store was recorded absolute fall back to the spec's setting
    resolved here. A credential masked in the manifest comes back from this process or the
    environment (`usable_tracking_uri`).

    Raises:
        UserError: When the store needs a credential nobody gave.
    """
    if not run.manifest.tracked:
        return None
    if run.manifest.tracking_uri is None:
        return resolve_tracking_uri(run.spec.tracking.uri)
    return usable_tracking_uri(run.manifest.tracking_uri)


def log_report(run: Run, files: Sequence[Path]) -> str | None:
    """Log report files to the search's parent run; None when the search is untracked.

    Raises:
        UserError: When no parent run was recorded for the run directory in its store.
    """
    from mlflow.exceptions import MlflowException

    uri = run_tracking_uri(run)
    if uri is None:
        return None
    try:
        return log_search_artifacts(
            run.path,
            files,
            artifact_path=REPORT_ARTIFACT_PATH,
            tracking_uri=uri,
            experiment=run.experiment_name,
        )
    except MlflowException as e:  # the store refused or is out of reach: say which, no trace
        raise UserError(f"cannot log the report to {redact_text(uri)}: {e.message}") from None
