"""Verbs that read one spec or recipe on this machine: validate, show, sample, plan, train."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from rsearch.cli.common import SetOption, dump_yaml, err, out, user_errors

if TYPE_CHECKING:
    from rsearch.spec import Recipe, SearchSpec


def validate(
    paths: list[Path] = typer.Argument(..., help="Search spec or recipe files."),
) -> None:
    """Check search specs and recipe files without running anything: every problem at once.

    Each file is told a search spec or a recipe by its top-level keys (see
    rsearch.spec.load_spec_or_recipe) and the line for it says which it was.
    """
    from rsearch.spec import SpecError, load_spec_or_recipe

    failed = 0
    for path in paths:
        try:
            checked = load_spec_or_recipe(path)
        except SpecError as e:
            failed += 1
            for problem in e.problems:
                err.print(str(problem), highlight=False, markup=False)
            continue
        out.print(f"ok {path}: {_summary(checked)}", highlight=False, markup=False)
    if failed:
        err.print(f"{failed} of {len(paths)} file(s) invalid", highlight=False)
        raise typer.Exit(2)


def _summary(checked: SearchSpec | Recipe) -> str:
    from rsearch.spec import Recipe

    if isinstance(checked, Recipe):
        return f"recipe ({checked.model.name}, {checked.data.dataset}, {checked.epochs} epochs)"
    spec = checked
    scaling = f", scaling {spec.scaling.type}" if spec.scaling.type != "none" else ""
    return (
        f"search spec {spec.name!r} ({spec.search.algorithm}, {spec.search.num_trials} trials, "
        f"{len(spec.space)} parameters{scaling}, scheduler {spec.scheduler.type})"
    )


@user_errors
def show(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    overrides: list[str] = SetOption,
) -> None:
    """Print the resolved spec (presets merged, defaults filled) as YAML."""
    from rsearch.spec import load_spec

    spec = load_spec(spec_path, overrides or ())
    out.print(dump_yaml(spec.model_dump(mode="json")), end="", highlight=False, markup=False)


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
        if trial.scaling:
            doc["scaling"] = trial.scaling
        if full:
            doc["recipe"] = trial.recipe.model_dump(mode="json")
        docs.append(doc)
    out.print(yaml.safe_dump_all(docs, sort_keys=False), end="", highlight=False, markup=False)


class PlanFormat(str, Enum):
    """How `rsearch plan` prints."""

    table = "table"
    json = "json"


@user_errors
def plan(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    overrides: list[str] = SetOption,
    fmt: PlanFormat = typer.Option(PlanFormat.table, "--format", help="How to print."),
    address: str | None = typer.Option(
        None, "--address", help="Price concurrency on this Ray cluster (default: this machine)."
    ),
    measure: bool = typer.Option(
        True,
        "--measure/--no-measure",
        help="Time each architecture here (cached), or price device time by FLOPs at a "
        "reference model's FLOPs/s.",
    ),
) -> None:
    """The bill before anything runs: trials, rungs, FLOPs, device-hours, wall-clock, budget."""
    import warnings

    from rsearch.plan import FlopsRateSpeed, MeasuredSpeed, plan_search
    from rsearch.plan.bill import cluster_resources
    from rsearch.plan.render import plan_renderables
    from rsearch.spec import load_spec

    spec = load_spec(spec_path, overrides or ())
    cpus, gpus, where = cluster_resources(address)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        speed = MeasuredSpeed() if measure else FlopsRateSpeed()
        bill = plan_search(spec, cpus, gpus, speed=speed, cluster_source=where)
    for message in dict.fromkeys(str(w.message) for w in caught):  # each once, in order
        err.print(f"warning: {message}", highlight=False, markup=False)
    if fmt is PlanFormat.json:
        print(bill.model_dump_json(indent=2))
        return
    for renderable in plan_renderables(bill):
        out.print(renderable, highlight=False)


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
    from rsearch.rundir.teachers import resolve_teachers
    from rsearch.spec import load_recipe

    recipe = resolve_teachers(load_recipe(recipe_path, overrides or ()))
    from rsearch.train import run_recipe  # torch: seconds to import, only once the recipe is sound

    run_recipe(recipe, metrics, progress=progress)
    err.print(f"metrics written to {metrics}", highlight=False)
