"""The `report` verb, and the report written automatically when `run` or `resume` ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rsearch.cli.common import err, out, user_errors
from rsearch.errors import UserError

ARTIFACT_PATH = "report"
"""Folder of the search's MLflow parent run the report and its figures go to."""


@user_errors
def report(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder to write to (default: RUN_DIR/report)."
    ),
    fmt: str = typer.Option("html", "--format", help="html (self-contained) or md."),
    mlflow: bool = typer.Option(
        True, "--mlflow/--no-mlflow", help="Also log the report to the search's MLflow run."
    ),
) -> None:
    """Write a search's report: best trials, Pareto front, importance, curves, plots."""
    if fmt not in ("html", "md"):
        raise UserError(f"--format must be html or md, not {fmt!r}")
    written = _write(run_dir.resolve(), out_dir, fmt)
    if mlflow:
        _print_logged(log_report(run_dir.resolve(), written.files))


def _write(run_dir: Path, out_dir: Path | None, fmt: str) -> Any:
    from rsearch.report import write_report

    written = write_report(run_dir, out_dir.resolve() if out_dir else None, fmt)
    out.print(f"report: {written.page}", highlight=False, markup=False)
    if written.partial:
        err.print("partial report: the search has not finished", highlight=False)
    return written


def log_report(run_dir: Path, files: list[Path]) -> str | None:
    """Log report files to the search's MLflow parent run; None when the search is untracked.

    Raises:
        UserError: When no parent run was recorded for run_dir in the search's store.
    """
    from rsearch.rundir import load_run_spec, read_manifest
    from rsearch.tracking import log_search_artifacts

    manifest = read_manifest(run_dir)
    if manifest.get("tracked") is False:
        return None
    spec = load_run_spec(run_dir)
    return log_search_artifacts(
        run_dir,
        files,
        artifact_path=ARTIFACT_PATH,
        tracking_uri=manifest.get("tracking_uri") or spec.tracking.uri,
        experiment=spec.tracking.experiment or spec.name,
    )


def _print_logged(run_id: str | None) -> None:
    if run_id is None:
        err.print("the search was run without tracking: report not logged to MLflow")
    else:
        out.print(f"logged to MLflow run {run_id} under {ARTIFACT_PATH}/", highlight=False)


def report_after_search(run_dir: Path) -> None:
    """Write and log the report at the end of `run`/`resume`; a failure only warns."""
    try:
        written = _write(run_dir, None, "html")
        _print_logged(log_report(run_dir, written.files))
    except Exception as e:  # the search itself succeeded; its report must not fail it
        err.print(f"warning: no report written or logged: {e}", highlight=False, markup=False)
