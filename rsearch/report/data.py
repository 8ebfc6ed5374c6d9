"""What a report reads from a run directory: the spec, the Optuna study, per-epoch curves.

The study is opened read-only from its journal file, which Optuna keeps safe for readers while
the search is still writing to it, so a report works mid-search and after a resume alike.
Per-epoch curves come from Tune's `result.json` of each trial; the study's intermediate values
(the single objective only) are the fallback. A trial's depth, width and resolution are its
searched values resolved through the spec's scaling strategy, or what Tune's config recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsearch.errors import UserError
from rsearch.rundir import STUDY_FILE, load_run_spec, study_file
from rsearch.spec.scaling import recipe_params
from rsearch.spec.search import SearchSpec

if TYPE_CHECKING:
    import optuna

METRICS_ATTR = "metrics"
"""User attribute of an Optuna trial holding its final metrics (written by the searcher)."""
TUNE_ID_ATTR = "tune_trial_id"
"""User attribute of an Optuna trial naming the Tune trial that ran it."""
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
    """A search as a report sees it: spec, study and every trial."""

    run_dir: Path
    spec: SearchSpec
    study: optuna.Study
    trials: list[TrialRecord]
    curve_metric: str

    def in_state(self, *states: str) -> list[TrialRecord]:
        """The trials in any of the given states, in trial order."""
        return [t for t in self.trials if t.state in states]


def load_search(run_dir: Path) -> SearchRecord:
    """Read a run directory's spec, study and trial curves.

    Raises:
        UserError: When run_dir is not an rsearch run or its study does not exist yet.
    """
    spec = load_run_spec(run_dir)
    study = open_study(run_dir, spec)
    traces = tune_traces(run_dir)
    metric = CURVE_METRIC if traces else spec.objective[0].metric
    trials = [_record(spec, t, traces) for t in study.get_trials(deepcopy=False)]
    return SearchRecord(run_dir, spec, study, trials, metric)


def open_study(run_dir: Path, spec: SearchSpec) -> optuna.Study:
    """The run's Optuna study, from its journal file.

    Raises:
        UserError: When the run has no study file yet.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = study_file(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} has no Optuna study ({STUDY_FILE}); did the search start?")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=spec.name, storage=storage)


@dataclass(frozen=True)
class TuneTrace:
    """What Tune recorded of one trial: its per-epoch curve and the recipe values it ran."""

    curve: dict[int, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """The trial's config params: recipe paths, after any scaling strategy resolved them."""


def tune_traces(run_dir: Path) -> dict[str, TuneTrace]:
    """Per-epoch CURVE_METRIC and recipe values of every Tune trial, keyed by Tune's trial id.

    Tune appends one JSON line per reported result to `<trial dir>/result.json`; a line
    cut short by a search still writing it is skipped.
    """
    traces: dict[str, TuneTrace] = {}
    for path in sorted(run_dir.glob("*/result.json")):
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
    return traces


def _record(
    spec: SearchSpec, trial: optuna.trial.FrozenTrial, traces: dict[str, TuneTrace]
) -> TrialRecord:
    trace = traces.get(str(trial.user_attrs.get(TUNE_ID_ATTR)), TuneTrace())
    if traces:  # one metric for every trial: never mix Tune's curves with Optuna's
        curve = trace.curve
    else:
        curve = {int(k): float(v) for k, v in trial.intermediate_values.items()}
    metrics = trial.user_attrs.get(METRICS_ATTR) or {}
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        params=dict(trial.params),
        values=list(trial.values) if trial.values is not None else None,
        metrics={k: float(v) for k, v in metrics.items()},
        curve=dict(sorted(curve.items())),
        scaling=scaling_values(
            spec, {**recipe_params(trial.params, spec.scaling, spec.base), **trace.params}
        ),
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
