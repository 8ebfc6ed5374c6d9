"""Metrics at test resolutions reach MLflow under keys it accepts (MLflow refuses `@`)."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric_name

from rsearch.tracking.entities import numeric


def test_at_becomes_at_in_words() -> None:
    with pytest.raises(MlflowException):
        _validate_metric_name("val_top1@48")
    keys = numeric({"val_top1@48": 90.0, "val_top1@mean": 89.0, "val_top1": 91.0})
    assert keys == {"val_top1_at_48": 90.0, "val_top1_at_mean": 89.0, "val_top1": 91.0}
    for key in keys:
        _validate_metric_name(key)
