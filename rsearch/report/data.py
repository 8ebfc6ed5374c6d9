"""What a report reads from a run directory: the spec, the Optuna study, per-epoch curves.

The study is opened read-only from its journal file, which Optuna keeps safe for readers while
the search is still writing to it, so a report works mid-search and after a resume alike.
Per-epoch curves come from Tune's `result.json` of each trial; the study's intermediate values
(the single objective only) are the fallback. A trial's depth, width and resolution are its
searched values resolved through the spec's scaling strategy, or what Tune's config recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsearch.rundir import Run, TrialView, open_run, open_study, trial_views
from rsearch.spec.search import SearchSpec

if TYPE_CHECKING:
    import optuna

CURVE_METRIC = "val_top1"
"""The metric learning curves show when Tune's per-epoch results are at hand."""
SCALING_FIELDS = ("model.depth_multiplier", "model.width_multiplier", "model.layers")
SCALING_FIELDS_DATA = ("data.image_size",)
"""Recipe fields a scaling search varies (ResNet-RS / EfficientNet: depth, width, resolution)."""


@dataclass(frozen=True)
class TrialRecord:
    """One trial as a report sees it.

    Attributes:
        number: Optuna's trial number (the label on every figure).
        state: COMPLETE, PRUNED, FAIL, RUNNING or WAITING.
        params: The searched values, by dotted path.
        values: Objective values (COMPLETE trials only).
        metrics: Final metrics (params_m, gflops, infer_images_per_s, infer_latency_ms, ...).
        curve: Epoch -> value of the curve metric.
        scaling: The trial's resolved depth/width/layers/resolution.
    """

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    metrics: dict[str, float]
    curve: dict[int, float] = field(default_factory=dict)
    scaling: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchRecord:
    """A search as a report sees it: its run, study and every trial."""

    run: Run
    study: optuna.Study
    trials: list[TrialRecord]
    curve_metric: str
    traces: dict[str, TuneTrace] = field(default_factory=dict)
    """Tune's per-epoch results by Tune trial id (empty when none are at hand)."""

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.run.path

    @property
    def spec(self) -> SearchSpec:
        """The resolved spec the search ran."""
        return self.run.spec

    def in_state(self, *states: str) -> list[TrialRecord]:
        """The trials in any of the given states, in trial order."""
        return [t for t in self.trials if t.state in states]


def load_search(run: Run | Path) -> SearchRecord:
    """Read a run directory's spec, study and trial curves.

    Raises:
        UserError: When run_dir is not an rsearch run or its study does not exist yet.
    """
    run = run if isinstance(run, Run) else open_run(run)
    study = open_study(run.study_file, run.spec.name)
    traces = tune_traces(run.experiment_dirs)
    metric = CURVE_METRIC if traces else run.spec.objective[0].metric
    trials = [_record(run.spec, t, traces) for t in trial_views(study)]
    return SearchRecord(run, study, trials, metric, traces)


@dataclass(frozen=True)
class TuneTrace:
    """What Tune recorded of one trial: its per-epoch curve and the recipe values it ran."""

    curve: dict[int, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """The trial's config params: recipe paths, after any scaling strategy resolved them."""
    results: dict[int, dict[str, float]] = field(default_factory=dict)
    """Every numeric value of each epoch's result, by epoch (rung analysis reads these)."""


def tune_traces(experiment_dirs: Iterable[Path]) -> dict[str, TuneTrace]:
    """Per-epoch CURVE_METRIC and recipe values of every Tune trial, keyed by Tune's trial id.

    Args:
        experiment_dirs: The search's Tune experiments (`Run.experiment_dirs`: the run
            directory, then each extension's).

    Tune appends one JSON line per reported result to `<trial dir>/result.json`; a line
    cut short by a search still writing it is skipped.
    """
    traces: dict[str, TuneTrace] = {}
    files = [path for d in experiment_dirs for path in sorted(d.glob("*/result.json"))]
    for path in files:
        for line in path.read_text().splitlines():
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            trial_id = result.get("trial_id")
            if not trial_id:
                continue
            trace = traces.setdefault(str(trial_id), TuneTrace())
            params = (result.get("config") or {}).get("params")
            if isinstance(params, dict):
                trace.params.update(params)
            value, epoch = result.get(CURVE_METRIC), result.get("epoch")
            if isinstance(value, int | float) and isinstance(epoch, int):
                trace.curve[epoch] = float(value)
            if isinstance(epoch, int):
                trace.results[epoch] = {
                    k: float(v)
                    for k, v in result.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                }
    return traces


def _record(spec: SearchSpec, trial: TrialView, traces: dict[str, TuneTrace]) -> TrialRecord:
    trace = traces.get(str(trial.tune_trial_id), TuneTrace())
    # One metric for every trial: never mix Tune's curves with Optuna's.
    curve = trace.curve if traces else trial.intermediate
    return TrialRecord(
        number=trial.number,
        state=trial.state,
        params=trial.params,
        values=trial.values,
        metrics=trial.metrics,
        curve=dict(sorted(curve.items())),
        scaling=scaling_values(spec, {**trial.recipe_params(spec), **trace.params}),
    )


def scaling_values(spec: SearchSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The depth, width, stage layout and resolution a trial ran: its params over the base."""
    base = spec.base.model_dump(mode="json")
    values: dict[str, Any] = {}
    for path in (*SCALING_FIELDS, *SCALING_FIELDS_DATA):
        section, name = path.split(".")
        values[path] = params[path] if path in params else base.get(section, {}).get(name)
    return values


def varied_scaling_fields(search: SearchRecord) -> list[str]:
    """Scaling fields that differ between the search's trials (or are searched outright)."""
    searched = set(search.spec.space)
    fields = []
    for path in (*SCALING_FIELDS, *SCALING_FIELDS_DATA):
        seen = {json.dumps(t.scaling.get(path)) for t in search.trials}
        if path in searched or len(seen) > 1:
            fields.append(path)
    return fields
