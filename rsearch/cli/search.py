"""Verbs that run a search here or on a cluster the driver joins: run, resume, best, ui."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rsearch.cli.common import SetOption, dump_yaml, err, out, user_errors
from rsearch.cli.report import report_after_search
from rsearch.errors import UserError


@user_errors
def run(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to join (default: an embedded Ray on this machine)."
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
    from rsearch.cluster.address import is_remote_ray_address
    from rsearch.cluster.storage import check_cluster_storage
    from rsearch.cluster.submit import spec_field_where
    from rsearch.spec import load_spec

    spec = load_spec(spec_path, overrides or ())
    if is_remote_ray_address(address):
        # Workers on other nodes write checkpoints there; MLflow stays with this driver.
        where = (
            "--storage" if storage else spec_field_where(spec_path, overrides or (), ("storage",))
        )
        check_cluster_storage(storage or spec.storage, where, allow_local_storage)
    from rsearch.tune.driver import run_search  # Ray and torch: only once the spec is sound

    info = run_search(
        spec,
        spec_path,
        address=address,
        storage=storage,
        live=live,
        tracking_uri=tracking_uri,
        track=track,
        local_dir=local_dir,
    )
    report_after_search(info.run_dir)
    _print_outcome(info)


@user_errors
def resume(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
) -> None:
    """Continue an interrupted search; finished trials are not run again."""
    from rsearch.tune.driver import resume_search

    info = resume_search(run_dir.resolve(), address=address, live=live)
    report_after_search(info.run_dir)
    _print_outcome(info)


def _print_outcome(info: Any) -> None:
    from rsearch.tune.results import best_trials

    for line in info.errors:
        err.print(f"trial failed: {line}", highlight=False, markup=False)
    run_dir = info.run_dir
    try:
        spec, best = best_trials(run_dir)
    except UserError as e:
        err.print(f"no best trial: {e}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    title = "Pareto set" if spec.multi_objective else "best trial"
    out.print(_best_table(spec, best, title))
    out.print(f"results: {run_dir}", highlight=False, markup=False)


SCALING_COLUMNS = (
    "model.layers",
    "model.depth_multiplier",
    "model.width_multiplier",
    "data.image_size",
)
"""Recipe values a scaling search's best-trial table shows beside the searched ones."""


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _best_table(spec: Any, best: list[Any], title: str) -> Any:
    from rich.table import Table

    from rsearch.spec.scaling import written_paths
    from rsearch.spec.space_paths import get_path

    # A scaling strategy's knobs are Optuna parameters of its own (alpha, gamma_band, ...);
    # the depth, width and resolution they produce are what a reader compares.
    scaled = [p for p in SCALING_COLUMNS if p in written_paths(spec.scaling)]
    table = Table(title=title)
    table.add_column("trial", justify="right")
    for path in [*spec.space, *scaled]:
        table.add_column(path, justify="right")
    for o in spec.objective:
        table.add_column(f"{o.metric} ({o.direction})", justify="right")
    for t in best:
        recipe = t.recipe.model_dump(mode="json")
        table.add_row(
            str(t.number),
            *(_cell(t.params.get(p, "-")) for p in spec.space),
            *(_cell(get_path(recipe, p)) for p in scaled),
            *(f"{v:.4g}" for v in t.values or []),
        )
    return table


@user_errors
def best(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    fmt: str = typer.Option("table", "--format", help="table, json or yaml."),
    export: Path | None = typer.Option(
        None, "--export", help="Write the best recipe as a standalone file `rsearch train` accepts."
    ),
) -> None:
    """Show the best trial (the Pareto set for several objectives) of a run."""
    import json

    from rsearch.tune.results import best_trials

    if fmt not in ("table", "json", "yaml"):
        raise UserError(f"--format must be table, json or yaml, not {fmt!r}")
    spec, trials = best_trials(run_dir.resolve())
    if fmt == "table":
        out.print(_best_table(spec, trials, "Pareto set" if spec.multi_objective else "best trial"))
    elif fmt == "json":
        print(json.dumps([t.as_dict() for t in trials], indent=2))
    else:
        print(dump_yaml([t.as_dict() for t in trials]), end="")
    if export is not None:
        header = (
            f"# Best recipe of search {spec.name!r} (trial {trials[0].number}), from {run_dir}.\n"
            f"# Train it alone with: rsearch train {export}\n"
        )
        export.write_text(header + dump_yaml(trials[0].recipe.model_dump(mode="json")))
        err.print(f"recipe written to {export}", highlight=False)


@user_errors
def ui(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="Store to show (default: $MLFLOW_TRACKING_URI or ./mlflow.db)."
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", "-e", help="Open this experiment's runs table (a spec's name)."
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(5000, "--port", help="0 picks a free port."),
) -> None:
    """Start the MLflow UI on the search store and print the URL of its runs table."""
    import time

    from rsearch.tracking import start_ui

    server = start_ui(tracking_uri, host=host, port=port, experiment=experiment)
    out.print(f"MLflow UI: {server.url}", highlight=False, markup=False)
    if server.process is None:
        return  # the store is a server already
    err.print("Ctrl-C stops it.", highlight=False)
    try:
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
