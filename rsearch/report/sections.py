"""The report's sections, each built from the search record and the figures drawn for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsearch.report import figures
from rsearch.report.data import SearchRecord, TrialRecord, varied_scaling_fields
from rsearch.report.importance import param_importances
from rsearch.report.pareto import accuracy_front, plotted_axes, search_front
from rsearch.report.render import Section, Table

TOP_TRIALS = 10
"""Rows of the best-trials table of a single-objective search."""
TOP_CURVES = 5
"""Top trials whose learning curves are drawn."""
COST_COLUMNS = (
    ("params_m", "params (M)"),
    ("gflops", "GFLOPs"),
    ("infer_images_per_s", "images/s"),
    ("infer_latency_ms", "latency (ms)"),
)
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits for floats, '-' for missing values."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def ranked(search: SearchRecord) -> list[TrialRecord]:
    """Completed trials, best first on the first objective."""
    sign = -1.0 if search.spec.objective[0].direction == "max" else 1.0
    done = [t for t in search.in_state("COMPLETE") if t.values]
    return sorted(done, key=lambda t: sign * (t.values or [0.0])[0])


def summary(search: SearchRecord) -> Section:
    """What was searched and how far the search got."""
    spec = search.spec
    counts = {s: len(search.in_state(s)) for s in STATES}
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in spec.objective)
    paragraphs = [
        f"Search {spec.name!r} in {search.run_dir}.",
        f"Objective(s): {objectives}; sampler {spec.search.algorithm}, scheduler "
        f"{spec.scheduler.type}, {spec.search.num_trials} trials of up to "
        f"{spec.budget_epochs} epochs.",
        "Trials so far: " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n) + ".",
    ]
    if search.run.extensions:
        added = ", ".join(f"+{e.trials}" for e in search.run.extensions)
        paragraphs.append(f"Extended with `rsearch extend`: {added} trials.")
    unfinished = counts["RUNNING"] + counts["WAITING"]
    missing = spec.search.num_trials - len(search.trials)
    if unfinished or missing > 0:
        paragraphs.append(
            f"Partial report: {unfinished} trial(s) still running and {max(missing, 0)} not "
            "yet started; run `rsearch report` again when the search ends."
        )
    return Section("Summary", paragraphs)


def best_trials(search: SearchRecord) -> Section:
    """Table of the Pareto set (several objectives) or the top trials (one objective)."""
    spec = search.spec
    if spec.multi_objective:
        rows = sorted(search_front(search), key=lambda t: t.number)
        note = "The search's Pareto set: completed trials no other completed trial dominates."
    else:
        rows = ranked(search)[:TOP_TRIALS]
        note = f"The top {len(rows)} completed trial(s), best first."
    if not rows:
        return Section("Best trials", ["No trial has completed yet."])
    # A scaling strategy searches knobs of its own (not space keys): show those too.
    extra = sorted({p for t in rows for p in t.params} - set(spec.space))
    params = [*spec.space, *extra]
    header = [
        "trial",
        *params,
        *(f"{o.metric} ({o.direction})" for o in spec.objective),
        *(label for _, label in COST_COLUMNS),
    ]
    body = [
        [
            f"#{t.number}",
            *(fmt(t.params.get(p)) for p in params),
            *(fmt(v) for v in t.values or []),
            *(fmt(t.metrics.get(key)) for key, _ in COST_COLUMNS),
        ]
        for t in rows
    ]
    return Section("Best trials", [note], Table(header, body))


def pareto(search: SearchRecord, out_dir: Path) -> Section:
    """Top-1 against each measured cost, with the non-dominated trials highlighted."""
    paragraphs = []
    if search.spec.multi_objective:
        front = ", ".join(f"#{t.number}" for t in search_front(search)) or "none yet"
        metrics = " and ".join(o.metric for o in search.spec.objective)
        paragraphs.append(f"Pareto set over {metrics} (Optuna's best_trials): {front}.")
    axes = plotted_axes(search)
    if not axes:
        paragraphs.append("No completed trial has measured accuracy and speed yet.")
        return Section("Pareto front", paragraphs)
    paths = []
    for axis in axes:
        numbers = ", ".join(f"#{n}" for n in sorted(accuracy_front(search, axis)))
        paragraphs.append(f"Top-1 vs {axis.metric}: front {numbers}.")
        paths.append(figures.pareto_figure(search, axis, out_dir / f"pareto_{axis.metric}.png"))
    return Section("Pareto front", paragraphs, figures=paths)


def importance(search: SearchRecord, out_dir: Path) -> Section:
    """fANOVA importances as a table and bar chart, or why there are none."""
    result = param_importances(search)
    if not result.by_objective:
        return Section("Parameter importance", [result.note + "."])
    metrics = list(result.by_objective)
    names = list(next(iter(result.by_objective.values())))
    table = Table(
        ["parameter", *metrics],
        [[n, *(fmt(result.by_objective[m].get(n)) for m in metrics)] for n in names],
    )
    path = figures.importance_figure(result, out_dir / "importance.png")
    notes = ["Optuna's fANOVA evaluator on the completed trials; each column sums to 1."]
    notes += [result.note + "."] if result.note else []
    return Section("Parameter importance", notes, table, [path])


def parallel(search: SearchRecord, out_dir: Path) -> Section:
    """Optuna's parallel-coordinates view of the searched parameters."""
    if not search.in_state("COMPLETE") or not search.spec.space:
        return Section("Parallel coordinates", ["No completed trial with searched values yet."])
    path = figures.parallel_figure(search, out_dir / "parallel_coordinates.png")
    note = "One line per completed trial across its searched values, coloured by objective 1."
    return Section("Parallel coordinates", [note], figures=[path])


def curves(search: SearchRecord, out_dir: Path) -> Section:
    """Learning curves of the top trials and of the early-stopped ones."""
    top = ranked(search)[:TOP_CURVES]
    stopped = [t for t in search.in_state("PRUNED") if t.curve]
    if not any(t.curve for t in [*top, *stopped, *search.in_state("RUNNING")]):
        return Section(
            "Learning curves",
            ["No per-epoch results yet: no trial's Tune result.json in the run directory."],
        )
    cuts = ", ".join(f"trial #{t.number} after epoch {max(t.curve)}" for t in stopped)
    paragraphs = [
        f"Top {len(top)} completed trial(s) solid; early-stopped and running ones dashed, "
        "with an x where they stopped.",
        f"Stopped early: {cuts or 'none'}.",
    ]
    path = figures.curves_figure(search, top, out_dir / "learning_curves.png")
    return Section("Learning curves", paragraphs, figures=[path])


def scaling(search: SearchRecord, out_dir: Path) -> Section | None:
    """Accuracy against depth, width and resolution, for searches that vary them."""
    fields = varied_scaling_fields(search)
    if not fields or not search.in_state("COMPLETE"):
        return None
    path = figures.scaling_figure(search, fields, out_dir / "scaling.png")
    note = f"Completed trials' top-1 against the scaling dimensions varied: {', '.join(fields)}."
    return Section("Scaling", [note], figures=[path])
