"""The `rsearch` command: each verb parses its arguments, calls one library function, prints.

Heavy libraries (torch, ray, mlflow) are imported inside the verbs that need them, so
`rsearch validate` answers in well under a second.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from rich.console import Console

from rsearch.errors import UserError

app = typer.Typer(
    name="rsearch",
    help="Search ResNet training recipes and scaling strategies on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

SetOption = typer.Option(
    None, "--set", help="Override a field: dotted.path=value (YAML value); repeatable."
)


def user_errors(fn: F) -> F:
    """Show a UserError as its message and exit 2, without a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, markup=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


@app.command()
def validate(paths: list[Path] = typer.Argument(..., help="Search spec files.")) -> None:
    """Check specs without running anything: every problem with file:line, all at once."""
    from rsearch.spec import SpecError, load_spec

    failed = 0
    for path in paths:
        try:
            spec = load_spec(path)
        except SpecError as e:
            failed += 1
            for problem in e.problems:
                err.print(str(problem), highlight=False, markup=False)
            continue
        scheduler = spec.scheduler.type
        out.print(
            f"OK {path}: {spec.name} — {len(spec.space)} parameters, "
            f"{spec.search.algorithm} x {spec.search.num_trials} trials, scheduler {scheduler}",
            highlight=False,
            markup=False,
        )
    if failed:
        err.print(f"{failed} of {len(paths)} file(s) invalid", highlight=False)
        raise typer.Exit(2)


@app.command()
@user_errors
def show(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    overrides: list[str] = SetOption,
) -> None:
    """Print the resolved spec (presets merged, defaults filled) as YAML."""
    from rsearch.spec import load_spec

    spec = load_spec(spec_path, overrides or ())
    out.print(_dump_yaml(spec.model_dump(mode="json")), end="", highlight=False, markup=False)


@app.command()
@user_errors
def sample(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    n: int = typer.Option(4, "-n", "--num", min=1, help="Configurations to draw."),
    overrides: list[str] = SetOption,
    full: bool = typer.Option(
        False, "--full", help="Print each whole recipe, not only the searched values."
    ),
) -> None:
    """Dry run: draw N trial recipes with the spec's sampler (no Ray, no training)."""
    from rsearch.spec import load_spec
    from rsearch.tune.sample import sample_trials

    spec = load_spec(spec_path, overrides or ())
    docs = []
    for trial in sample_trials(spec, n):
        doc: dict[str, Any] = {"trial": trial.number, "params": trial.params}
        if full:
            doc["recipe"] = trial.recipe.model_dump(mode="json")
        docs.append(doc)
    out.print(yaml.safe_dump_all(docs, sort_keys=False), end="", highlight=False, markup=False)


@app.command()
@user_errors
def train(
    recipe_path: Path = typer.Argument(..., metavar="RECIPE"),
    overrides: list[str] = SetOption,
    metrics: Path = typer.Option(
        Path("metrics.json"), "--metrics", help="Where the per-epoch and final metrics go."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train one recipe in this process and write its metrics as JSON."""
    from rsearch.spec import load_recipe
    from rsearch.train import run_recipe

    recipe = load_recipe(recipe_path, overrides or ())
    run_recipe(recipe, metrics, progress=progress)
    err.print(f"metrics written to {metrics}", highlight=False)


@app.command()
@user_errors
def run(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to join (default: an embedded Ray on this machine)."
    ),
    storage: str | None = typer.Option(None, "--storage", help="Root for run directories."),
    overrides: list[str] = SetOption,
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: spec, $MLFLOW_TRACKING_URI, ./mlflow.db).",
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="Record the search in MLflow."),
) -> None:
    """Run a search: Optuna proposes, Ray Tune schedules, Ray Train trains each trial."""
    from rsearch.spec import load_spec
    from rsearch.tune.driver import run_search

    spec = load_spec(spec_path, overrides or ())
    info = run_search(
        spec,
        spec_path,
        address=address,
        storage=storage,
        live=live,
        tracking_uri=tracking_uri,
        track=track,
    )
    _print_outcome(info)


@app.command()
@user_errors
def resume(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to join."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the live trial table."),
) -> None:
    """Continue an interrupted search; finished trials are not run again."""
    from rsearch.tune.driver import resume_search

    info = resume_search(run_dir.resolve(), address=address, live=live)
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


def _best_table(spec: Any, best: list[Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("trial", justify="right")
    for path in spec.space:
        table.add_column(path, justify="right")
    for o in spec.objective:
        table.add_column(f"{o.metric} ({o.direction})", justify="right")
    for t in best:
        values = t.values or []
        table.add_row(
            str(t.number),
            *(
                f"{t.params[p]:.4g}"
                if isinstance(t.params.get(p), float)
                else str(t.params.get(p, "-"))
                for p in spec.space
            ),
            *(f"{v:.4g}" for v in values),
        )
    return table


@app.command()
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
        print(_dump_yaml([t.as_dict() for t in trials]), end="")
    if export is not None:
        header = (
            f"# Best recipe of search {spec.name!r} (trial {trials[0].number}), from {run_dir}.\n"
            f"# Train it alone with: rsearch train {export}\n"
        )
        export.write_text(header + _dump_yaml(trials[0].recipe.model_dump(mode="json")))
        err.print(f"recipe written to {export}", highlight=False)


@app.command()
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


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
