"""What a report reads from a run directory: the spec, the Optuna study, per-epoch curves.

The study is opened read-only from its journal file, which Optuna keeps safe for readers while
the search is still writing to it, so a report works mid-search and after a resume alike.
Per-epoch curves come from Tune's `result.json` of each trial (every reported metric, any
objective); the study's intermediate values (the single objective only) are the fallback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsearch.errors import UserError
from rsearch.rundir import STUDY_FILE, load_run_spec, study_file
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params

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
    curves = tune_curves(run_dir)
    metric = CURVE_METRIC if curves else spec.objective[0].metric
    trials = [_record(spec, t, curves) for t in study.get_trials(deepcopy=False)]
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


def tune_curves(run_dir: Path) -> dict[str, dict[int, float]]:
    """Per-epoch CURVE_METRIC of every Tune trial, keyed by Tune's trial id.

    Tune appends one JSON line per reported result to `<trial dir>/result.json`; a line
    cut short by a search still writing it is skipped.
    """
    curves: dict[str, dict[int, float]] = {}
    for path in sorted(run_dir.glob("*/result.json")):
        for line in path.read_text().splitlines():
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            value, epoch, trial_id = (result.get(k) for k in (CURVE_METRIC, "epoch", "trial_id"))
            if isinstance(value, int | float) and isinstance(epoch, int) and trial_id:
                curves.setdefault(str(trial_id), {})[epoch] = float(value)
    return curves


def _record(
    spec: SearchSpec, trial: optuna.trial.FrozenTrial, curves: dict[str, dict[int, float]]
) -> TrialRecord:
    if curves:  # one metric for every trial: never mix Tune's curves with Optuna's
        curve = curves.get(str(trial.user_attrs.get(TUNE_ID_ATTR)), {})
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
        scaling=scaling_values(spec, dict(trial.params)),
    )


def scaling_values(spec: SearchSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The depth, width, stage layout and resolution a trial's recipe resolves to."""
    try:
        recipe = apply_params(spec.base, params).model_dump(mode="json")
    except Exception:  # a space key this version's Recipe does not know: read the params only
        recipe = spec.base.model_dump(mode="json")
    values: dict[str, Any] = {}
    for path in (*SCALING_FIELDS, *SCALING_FIELDS_DATA):
        section, name = path.split(".")
        values[path] = params.get(path, recipe.get(section, {}).get(name))
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
