"""The one table of metrics: objectives, default directions, report labels, trial summaries.

That the table matches what the trainer really reports is tested in tests/train
(test_metrics_reported.py), by training.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rsearch.report.labels import METRIC_LABELS, metric_label
from rsearch.spec import Objective, SpecError, load_spec
from rsearch.spec.metrics import BY_NAME, METRICS, OBJECTIVE_METRICS, SUMMARY_METRICS

SPEC = """\
name: t
objective:
  metric: {metric}
base:
  model: {{name: resnet18}}
"""


def _load(tmp_path: Path, metric: str) -> SpecError:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(metric=metric))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value


def test_unknown_objective_metric_is_a_spec_error_with_its_line(tmp_path: Path) -> None:
    error = _load(tmp_path, "val_tpo1")
    assert f"{tmp_path / 'spec.yaml'}:3:3: objective.0.metric: 'val_tpo1'" in str(error)
    assert "did you mean 'val_top1'?" in str(error)


def test_far_off_metric_lists_the_objective_metrics(tmp_path: Path) -> None:
    error = _load(tmp_path, "accuracy")
    assert "not a metric the trainer reports; use one of val_top1, val_top5" in str(error)


def test_reported_metric_without_direction_is_no_objective(tmp_path: Path) -> None:
    error = _load(tmp_path, "lr")
    assert "'lr' is not allowed: it has no better direction to optimise" in str(error)
    assert "; use one of val_top1" in str(error)
    assert "lr" not in OBJECTIVE_METRICS and "epoch" not in OBJECTIVE_METRICS


@pytest.mark.parametrize("name", OBJECTIVE_METRICS)
def test_default_direction_comes_from_the_table(name: str) -> None:
    assert Objective(metric=name).direction == BY_NAME[name].direction
    assert Objective(metric=name, mode="max").direction == "max"


def test_accuracy_is_maximised_and_cost_minimised() -> None:
    assert {m: BY_NAME[m].direction for m in ("val_top1", "val_loss", "infer_latency_ms")} == {
        "val_top1": "max",
        "val_loss": "min",
        "infer_latency_ms": "min",
    }


def test_names_are_unique() -> None:
    assert len(BY_NAME) == len(METRICS)


def test_report_labels_come_from_the_table() -> None:
    assert set(METRIC_LABELS) == set(BY_NAME)
    for metric in METRICS:
        assert metric_label(metric.name) == metric.label
        assert metric.label.startswith(metric.title)
        if metric.unit:
            assert metric.label.endswith(f"({metric.unit})")
    assert metric_label("val_top1") == "validation top-1 (%)"
    assert metric_label("not_a_metric") == "not_a_metric"


def test_trial_summary_is_the_tables_summary_entries() -> None:
    from rsearch.spec.metric_names import is_summary
    from rsearch.tune import optuna_searcher

    # The searcher asks the table which of a result's metrics to keep (val_top1@48 included).
    assert optuna_searcher.is_summary is is_summary
    assert [m for m in BY_NAME if is_summary(m)] == list(SUMMARY_METRICS)
    assert set(SUMMARY_METRICS) == {
        "epoch",
        "val_top1",
        "val_loss",
        "val_auc",
        "ema_val_top1",
        "params_m",
        "gflops",
        "model_mbit",
        "gbops",
        "train_images_per_s",
        "infer_images_per_s",
        "infer_latency_ms",
        "infer_spread_pct",
        "infer_latency_spread_pct",
    }


def test_table_imports_no_heavy_library() -> None:
    code = (
        "import sys, rsearch.spec.metrics\n"
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_reported_only_keeps_the_trainers_metrics() -> None:
    from rsearch.spec.metric_names import reported_only

    result = {"val_top1": 90.0, "epoch": 2, "time_total_s": 12.5, "pid": 7, "trial_id": "t"}
    assert reported_only(result) == {"val_top1": 90.0, "epoch": 2}


def test_text_metrics_are_marked_and_never_objectives() -> None:
    from rsearch.spec.metrics import TEXT_METRICS, MetricInfo

    assert TEXT_METRICS == ("device_kind",)
    assert not set(TEXT_METRICS) & (set(OBJECTIVE_METRICS) | set(SUMMARY_METRICS))
    with pytest.raises(ValueError, match="text metric 'gpu'"):
        MetricInfo("gpu", "device", "", "max", "A name.", text=True)
