"""The `report` verb, and the report written automatically when `run` or `resume` ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rsearch.cli.common import err, out, user_errors
from rsearch.errors import UserError
from rsearch.report.formats import ReportFormat


@user_errors
def report(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder to write to (default: RUN_DIR/report)."
    ),
    fmt: ReportFormat = typer.Option(
        ReportFormat.html, "--format", help="html (self-contained) or md."
    ),
    mlflow: bool = typer.Option(
        True, "--mlflow/--no-mlflow", help="Also log the report to the search's MLflow run."
    ),
) -> None:
    """Write a search's report: best trials, Pareto front, importance, curves, plots."""
    from rsearch.rundir import open_run

    run = open_run(run_dir)
    written = _write(run, out_dir, fmt)
    if mlflow:
        from rsearch.tracking.reports import log_report

        _print_logged(log_report(run, written.files))


def _write(run: Any, out_dir: Path | None, fmt: ReportFormat) -> Any:
    from rsearch.report import write_report

    written = write_report(run, out_dir.resolve() if out_dir else None, fmt)
    out.print(f"report: {written.page}", highlight=False, markup=False)
    if written.partial:
        err.print("partial report: the search has not finished", highlight=False)
    return written


def _print_logged(run_id: str | None) -> None:
    from rsearch.tracking.reports import REPORT_ARTIFACT_PATH

    if run_id is None:
        err.print("the search was run without tracking: report not logged to MLflow")
    else:
        out.print(f"logged to MLflow run {run_id} under {REPORT_ARTIFACT_PATH}/", highlight=False)


def report_after_search(run: Any) -> None:
    """Write and log the report at the end of `run`/`resume`; a failure only warns.

    The search itself succeeded and its records are safe in the run directory; a report that
    cannot be written or logged (no finished trial, MLflow out of reach) must not fail it.
    `rsearch report RUN_DIR` tries again.
    """
    from rsearch.tracking.reports import log_report

    try:
        written = _write(run, None, ReportFormat.html)
        _print_logged(log_report(run, written.files))
    except (UserError, OSError) as e:
        err.print(f"warning: no report written or logged: {e}", highlight=False, markup=False)
