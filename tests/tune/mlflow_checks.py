"""Reading what a search recorded in MLflow, for the integration tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from rsearch.tracking import find_search_run


def search_runs(run_dir: Path) -> tuple[Any, list[Any]]:
    """The parent run recorded for run_dir and its child runs (from the test store)."""
    parent = find_search_run(run_dir)
    assert parent is not None, f"no parent run for {run_dir}"
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return parent, children


def epoch_steps(run_id: str, key: str = "val_top1") -> list[int]:
    """The steps at which a metric was logged, in order."""
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    return sorted(m.step for m in client.get_metric_history(run_id, key))
