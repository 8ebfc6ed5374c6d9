"""Metrics at test resolutions (val_top1@48, val_top1@mean) in specs, and the resolution sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rsearch.report.labels import metric_label
from rsearch.spec import SpecError, load_spec
from rsearch.spec.data_section import DataConfig
from rsearch.spec.metric_names import (
    check_objective_metric,
    is_summary,
    metric_info,
    natural_direction,
    reported_only,
)

SPEC = """\
name: t
objective:
{objective}
search: {{algorithm: nsga2, num_trials: 4}}
base:
  model: {{name: resnet18}}
  data:
    dataset: digits
    image_size: 32
    eval_resolutions: [24, 32, 48]
  epochs: 1
"""


def _load(tmp_path: Path, objective: str, sizes: str = "[24, 32, 48]") -> object:
    text = SPEC.format(objective=objective).replace("[24, 32, 48]", sizes)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec(path)


def test_objective_at_an_evaluated_resolution_validates(tmp_path: Path) -> None:
    spec = _load(tmp_path, "  - {metric: val_top1@48}\n  - {metric: val_top1@mean}")
    assert [o.direction for o in spec.objective] == ["max", "max"]  # type: ignore[attr-defined]
    single = _load(tmp_path, "  metric: val_loss@24")
    assert single.objective[0].direction == "min"  # type: ignore[attr-defined]


def test_objective_at_a_resolution_not_evaluated_is_a_file_line_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, "  - {metric: val_top1}\n  - {metric: val_top1@48}", sizes="[24, 32]")
    (problem,) = info.value.problems
    assert problem.field == "objective.1.metric"
    assert "48 in base.data.eval_resolutions" in problem.message
    assert problem.where is not None and problem.where.line == 4
    assert str(problem).startswith(f"{tmp_path / 'spec.yaml'}:4:")


def test_mean_needs_some_test_resolution(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="val_top1@mean needs a test resolution"):
        _load(tmp_path, "  metric: val_top1@mean", sizes="[]")


@pytest.mark.parametrize(
    "name", ["val_top5@48", "val_top1@x", "val_top1@048", "val_loss@mean", "epoch@32"]
)
def test_only_declared_bases_and_forms_take_a_suffix(name: str) -> None:
    assert metric_info(name) is None
    with pytest.raises(ValueError, match="not a metric the trainer reports"):
        check_objective_metric(name)


def test_suffixed_metrics_read_the_table() -> None:
    info = metric_info("val_top1@48")
    assert info is not None and info.name == "val_top1@48" and info.unit == "%"
    assert metric_label("val_top1@48") == "validation top-1 at 48 px (%)"
    assert metric_label("val_top1@mean") == "validation top-1, mean over test resolutions (%)"
    assert natural_direction("val_loss@32") == "min"
    assert is_summary("val_top1@48") and is_summary("val_top1@mean")
    assert reported_only({"val_top1@48": 1.0, "val_top1@x": 2.0, "pid": 3}) == {"val_top1@48": 1.0}


def test_train_resolutions_refuse_progressive_and_repeats() -> None:
    with pytest.raises(ValidationError, match="cannot be combined with data.progressive"):
        DataConfig(train_resolutions=[16, 32], progressive=[{"epochs": 1, "image_size": 16}])
    with pytest.raises(ValidationError, match="repeats a resolution"):
        DataConfig(eval_resolutions=[32, 32])
    with pytest.raises(ValidationError):
        DataConfig(train_resolutions=[4])
