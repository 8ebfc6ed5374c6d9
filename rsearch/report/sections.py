"""The report's sections, each built from the search record and the figures drawn for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsearch.report import figures
from rsearch.report.data import SearchRecord, TrialRecord, varied_scaling_fields
from rsearch.report.fidelity import MIN_TRIALS, WARN_BELOW, search_rank_correlations
from rsearch.report.importance import param_importances
from rsearch.report.pareto import search_front
from rsearch.report.render import Section, Table
from rsearch.rundir import read_compute

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


def compute(search: SearchRecord) -> Section | None:
    """What the search spent, beside its plan and budget, and why it stopped (None: no record,
    a search from before rsearch kept one)."""
    record = read_compute(search.run_dir)
    if record is None:
        return None
    line = record.summary_line()
    paragraphs = [line[0].upper() + line[1:] + "."]
    rows = [["spent", _flops(record.total_flops), fmt(record.total_device_hours)]]
    if record.planned is not None:
        planned = record.planned
        rows.append(["planned", _flops(planned.total_flops), fmt(planned.total_device_hours)])
    if record.budget_flops is not None or record.budget_device_hours is not None:
        rows.append(["budget", _flops(record.budget_flops), fmt(record.budget_device_hours)])
    paragraphs.append(
        "FLOPs count 2 per multiply-add: training forward and backward plus evaluation, over "
        "the epochs trials reported; device-hours are epoch wall time times workers."
    )
    return Section("Compute", paragraphs, Table(["", "FLOPs", "device-hours"], rows))


def _flops(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def rungs(search: SearchRecord) -> Section | None:
    """Rank correlation of low rungs against high ones, with a warning where it is weak."""
    pairs = search_rank_correlations(search)
    if not pairs:
        return None
    unit = "equivalent epochs" if search.spec.budget_unit == "compute" else "epochs"
    paragraphs = [
        f"How the trials that reached both rungs ranked at each (objective "
        f"{search.spec.objective[0].metric}; rungs in {unit}; '-' below {MIN_TRIALS} trials)."
    ]
    weak = [p for p in pairs if p.misleading]
    if weak:
        worst = min(weak, key=lambda p: p.spearman or 0.0)
        paragraphs.append(
            f"WARNING: the rung at {worst.low:.3g} ranks trials unlike the rung at "
            f"{worst.high:.3g} (Spearman {fmt(worst.spearman)} < {WARN_BELOW}): the scheduler "
            "stops trials on a misleading signal. Raise the grace period or the low rungs' "
            "resolution or data fraction."
        )
    rows = [
        [fmt(p.low), fmt(p.high), str(p.trials), fmt(p.spearman), fmt(p.kendall)] for p in pairs
    ]
    header = ["low rung", "high rung", "trials", "Spearman", "Kendall"]
    return Section("Low-fidelity ranking", paragraphs, Table(header, rows))


def scaling(search: SearchRecord, out_dir: Path) -> Section | None:
    """Accuracy against depth, width and resolution, for searches that vary them."""
    fields = varied_scaling_fields(search)
    if not fields or not search.in_state("COMPLETE"):
        return None
    path = figures.scaling_figure(search, fields, out_dir / "scaling.png")
    note = f"Completed trials' top-1 against the scaling dimensions varied: {', '.join(fields)}."
    return Section("Scaling", [note], figures=[path])
