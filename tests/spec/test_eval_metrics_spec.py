"""Evaluation metrics in specs: val_auc & co. as objectives, extra split names (rotated_top1),
and the checks that tie an objective to the base recipe that reports it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rsearch.report.labels import metric_label
from rsearch.spec import SpecError, load_spec
from rsearch.spec.data_section import DataConfig
from rsearch.spec.metric_names import is_summary, metric_info, natural_direction, split_of
from rsearch.tracking.entities import metric_key

SPEC = """\
name: t
objective:
  metric: {metric}
search: {{algorithm: random, num_trials: 2}}
base:
  model: {{name: resnet18}}
  data:
    dataset: digits
    image_size: 16
{data}
  epochs: 1
"""


def _load(tmp_path: Path, metric: str, data: str = "") -> object:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(metric=metric, data=data))
    return load_spec(path)


def _problem(tmp_path: Path, metric: str, data: str = "") -> str:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, metric, data)
    (problem,) = info.value.problems
    assert problem.field == "objective.0.metric"
    assert str(problem).startswith(f"{tmp_path / 'spec.yaml'}:3:")
    return problem.message


ROTATED = "    eval_splits: {rotated: /data/rotated}"


def test_a_split_metric_is_an_objective_when_the_split_is_named(tmp_path: Path) -> None:
    spec = _load(tmp_path, "rotated_top1", ROTATED)
    assert spec.objective[0].direction == "max"  # type: ignore[attr-defined]
    spec = _load(tmp_path, "rotated_loss", ROTATED)
    assert spec.objective[0].direction == "min"  # type: ignore[attr-defined]


def test_an_unknown_split_is_a_file_line_error(tmp_path: Path) -> None:
    message = _problem(tmp_path, "rotatd_top1", ROTATED)
    assert "evaluation split 'rotatd' in base.data.eval_splits" in message
    assert "did you mean 'rotated'" in message
    assert "lists none" in _problem(tmp_path, "rotated_auc")


def test_class_metrics_are_objectives(tmp_path: Path) -> None:
    for metric in ("val_auc", "val_balanced_acc", "val_f1"):
        assert _load(tmp_path, metric).objective[0].direction == "max"  # type: ignore[attr-defined]
    binary = "    one_vs_rest: 3"
    assert _load(tmp_path, "val_sensitivity", binary).objective[0].metric == "val_sensitivity"  # type: ignore[attr-defined]


def test_binary_metrics_need_a_binary_task(tmp_path: Path) -> None:
    message = _problem(tmp_path, "val_specificity")
    assert "two-class tasks only" in message and "10-class" in message


def test_class_metrics_switched_off_cannot_be_objectives(tmp_path: Path) -> None:
    assert "class_metrics true" in _problem(tmp_path, "val_auc", "    class_metrics: false")


@pytest.mark.parametrize("name", ["val", "train", "ema_val", "infer", "2nd", "a-b", ""])
def test_split_names_are_identifiers_free_of_metric_prefixes(name: str) -> None:
    with pytest.raises(ValidationError, match="evaluation split"):
        DataConfig(eval_splits={name: "/x"})


def test_split_metrics_read_from_the_table() -> None:
    info = metric_info("rotated_top1")
    assert info is not None and info.title == "rotated split top-1" and info.unit == "%"
    assert natural_direction("rotated_loss") == "min"
    assert is_summary("rotated_top1") and not is_summary("rotated_f1")
    assert split_of("rotated_balanced_acc") == "rotated"
    assert split_of("val_top1") is None and split_of("train_loss") is None
    assert metric_info("val_loss").name == "val_loss"  # type: ignore[union-attr]
    assert metric_info("train_top1") is None  # `train` is a metric prefix, never a split
    assert metric_label("rotated_auc") == "rotated split ROC AUC"
    assert metric_key("rotated_top1") == "rotated_top1"  # MLflow takes it as it is
