"""Verbs that run a search here or on a cluster the driver joins: run, resume, extend, best, ui."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from rsearch.cli.common import SetOption, dump_yaml, err, out, user_errors
from rsearch.cli.report import report_after_search
from rsearch.errors import UserError
from rsearch.redact import redact_text


class BestFormat(str, Enum):
    """How `rsearch best` prints."""

    table = "table"
    json = "json"
    yaml = "yaml"


@user_errors
def run(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster to join (default: an embedded Ray on this machine). Ray sends it the "
        "token from $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH; ~/.ray/auth_token only to this "
        "machine.",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Root for run directories: a path, or a URI (s3://, gs://) for Tune and checkpoints.",
    ),
    local_dir: str | None = typer.Option(
        None,
        "--local-dir",
        help="With a URI --storage: root of the local run directory (default ./rsearch-runs).",
    ),
    overrides: list[str] = SetOption,
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: spec, $MLFLOW_TRACKING_URI, ./mlflow.db).",
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="Record the search in MLflow."),
    allow_local_storage: bool = typer.Option(
        False,
        "--allow-local-storage",
        help="With a remote --address: accept an absolute local storage path (a shared mount).",
    ),
) -> None:
    """Run a search: Optuna proposes, Ray Tune schedules, Ray Train trains each trial."""
    from rsearch.cluster.auth import refuse_home_token_for_remote
    from rsearch.cluster.storage import refuse_unshared_storage
    from rsearch.spec import load_spec

    flags = {"--storage": storage, "--tracking-uri": tracking_uri}
    spec = load_spec(spec_path, overrides or (), flags)
    refuse_unshared_storage(spec, spec_path, overrides or (), flags, address, allow_local_storage)
    refuse_home_token_for_remote(address)
    from rsearch.tune.driver import run_search  # Ray and torch: only once the spec is sound

    info = run_search(spec, spec_path, address=address, live=live, track=track, local_dir=local_dir)
    _finish(info)


@user_errors
def resume(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Resume although the run's spec changed since it started (warns, records it).",
    ),
) -> None:
    """Continue an interrupted search (or extension); finished trials are not run again."""
    from rsearch.cluster.auth import refuse_home_token_for_remote
    from rsearch.tune.driver import resume_search

    refuse_home_token_for_remote(address)
    _finish(resume_search(run_dir, address=address, live=live, force=force))


@user_errors
def extend(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    trials: int = typer.Option(..., "--trials", min=1, help="Trials to add to the search."),
    overrides: list[str] = typer.Option(
        None,
        "--set",
        help="Narrow a space range (space.PATH.low/high=value) or set search.max_concurrent, "
        "search.max_failures, resources.*; repeatable.",
    ),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
) -> None:
    """Add trials to a finished search: its Optuna study and MLflow run go on."""
    from rsearch.cluster.auth import refuse_home_token_for_remote
    from rsearch.tune.extend import extend_search

    refuse_home_token_for_remote(address)
    _finish(extend_search(run_dir, trials, overrides or (), address=address, live=live))


def _finish(info: Any) -> None:
    """The end of run/resume/extend: failures, the report, the best trial, where it all is."""
    from rsearch.report.best_table import best_tables
    from rsearch.report.summary import search_outcome
    from rsearch.rundir import open_run
    from rsearch.tracking.reports import run_tracking_uri

    for line in info.errors:
        err.print(f"trial failed: {redact_text(line)}", highlight=False, markup=False)
    run = open_run(info.run_dir)
    report_after_search(run)
    try:
        outcome = search_outcome(run)
    except UserError as e:
        err.print(f"no best trial: {redact_text(str(e))}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for table in best_tables(run.spec, outcome.best):
        out.print(table)
    gain = outcome.gain_line(run.spec.objective[0].metric)
    if gain is not None:
        out.print(gain, highlight=False, markup=False)
    _print_compute(run)
    uri = run_tracking_uri(run)
    lines = [f"run directory: {run.path}"]
    if uri is not None:
        lines.append(f"MLflow store:  {redact_text(uri)}")
        lines.append(f"open the UI:   rsearch ui --tracking-uri '{redact_text(uri)}'")
    lines.append(f"report:        rsearch report {run.path}")
    out.print("\n".join(lines), highlight=False, markup=False)


def _print_compute(run: Any) -> None:
    """The search's compute line (FLOPs, device-hours, wall time, budget), when recorded."""
    from rsearch.rundir import read_compute

    record = read_compute(run.path)
    if record is not None:
        out.print(record.summary_line(), highlight=False, markup=False)


@user_errors
def best(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    fmt: BestFormat = typer.Option(BestFormat.table, "--format", help="How to print."),
    export: Path | None = typer.Option(
        None, "--export", help="Write the best recipe as a standalone file `rsearch train` accepts."
    ),
) -> None:
    """Show the best trial (the Pareto set for several objectives) of a run."""
    import json

    from rsearch.report.best_table import best_tables
    from rsearch.rundir import best_trials, open_run, open_study

    run = open_run(run_dir)
    trials = best_trials(open_study(run.study_file, run.spec.name), run.spec)
    if fmt is BestFormat.table:
        for table in best_tables(run.spec, trials):
            out.print(table)
        _print_compute(run)
    elif fmt is BestFormat.json:
        print(json.dumps([t.as_dict() for t in trials], indent=2))
    else:
        print(dump_yaml([t.as_dict() for t in trials]), end="")
    if export is not None:
        header = (
            f"# Best recipe of search {run.spec.name!r} (trial {trials[0].number}), "
            f"from {run.path}.\n# Train it alone with: rsearch train {export}\n"
        )
        recipe = trials[0].recipe(run.spec).model_dump(mode="json")
        try:
            export.write_text(header + dump_yaml(recipe))
        except OSError as e:
            raise UserError(f"cannot write the recipe to {export}: {e.strerror}") from None
        err.print(f"recipe written to {export}", highlight=False)


@user_errors
def ui(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="Store to show (default: $MLFLOW_TRACKING_URI or ./mlflow.db)."
    ),
    experiment: str | None = typer.Option(
        None,
        "--experiment",
        "-e",
        help="Open this experiment's runs table (default: the most recent search's).",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(5000, "--port", help="0 picks a free port."),
) -> None:
    """Start the MLflow UI on the search store and print the URL of its runs table."""
    import signal
    import time

    from rsearch.tracking import start_ui

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    # The server runs in a session of its own (so Ctrl-C at the terminal reaches this process
    # only): without handlers, SIGTERM (`timeout`, systemd, `kill`) or SIGHUP (a closed
    # terminal) would end this process and leave the server holding the port. Installed
    # before it starts, so `start_ui` stops a server still starting, too; restored at the end
    # for a caller that runs the verb in its own process.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stop_signals}
    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)
    try:
        server = start_ui(tracking_uri, host=host, port=port, experiment=experiment)
        if server.process is None:
            out.print(f"MLflow UI: {server.url}", highlight=False, markup=False)
            return  # the store is a server already
        try:  # from here on: a signal that arrives while printing must stop the server too
            # Before the URL: whoever acts on the URL has been told where the log is.
            err.print(f"server log: {server.log_path}", highlight=False, markup=False)
            out.print(f"MLflow UI: {server.url}", highlight=False, markup=False)
            err.print("Ctrl-C stops it.", highlight=False)
            while server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            # A second signal must not cut the stop short and leave the server behind.
            for sig in stop_signals:
                signal.signal(sig, signal.SIG_IGN)
            server.stop()
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: set outside Python, and cannot be set back
                signal.signal(sig, handler)
