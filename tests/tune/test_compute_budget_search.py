"""A real search under a tiny compute budget: it stops admitting trials and stays within it.

Real Ray, real training (timm's test_resnet on digits), the real estimator and a real MLflow
store; the budget is set from the estimator's own per-epoch FLOPs, so the test knows how many
rungs fit without timing anything.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from rsearch.plan import estimate_trial
from rsearch.rundir import REJECTED_ATTR, read_compute
from rsearch.spec import load_spec
from rsearch.tracking.compute import TAG_STOP_REASON
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.mlflow_checks import search_runs

pytestmark = pytest.mark.slow


def test_a_tiny_budget_stops_admission_and_is_not_overrun(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(tmp_path, name="budgeted", trials=6)
    spec = load_spec(path)
    epoch = estimate_trial(spec.base, spec.resources).epochs[0]
    rung = epoch.train_flops + epoch.eval_flops  # ASHA's first rung is one epoch
    # Room for three and a half rungs: two first rungs, one promotion, then nothing fits.
    budget = 3.5 * rung
    path.write_text(
        path.read_text().replace("  seed: 0\n", f"  seed: 0\n  budget: {{flops: {budget}}}\n")
    )
    spec = load_spec(path)
    info = run_search(spec, path, live=False)
    assert not info.errors

    record = read_compute(info.run_dir)
    assert record is not None and record.budget_flops == budget
    assert 0 < record.total_flops <= budget + rung
    assert record.stop_reason is not None and record.stop_reason.startswith("budget: ")
    assert record.planned is not None and record.planned.total_flops > record.total_flops
    assert all(t.device_kind == "cpu" and t.device_s > 0 for t in record.trials.values())

    trials = load_study(info.run_dir, spec).trials
    trained = [t for t in trials if REJECTED_ATTR not in t.user_attrs]
    refused = [t for t in trials if REJECTED_ATTR in t.user_attrs]
    assert 2 <= len(trained) < 6
    assert len(refused) <= 1
    for t in refused:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.user_attrs[REJECTED_ATTR].startswith("budget: ")

    parent, children = search_runs(info.run_dir)
    assert len(children) == len(trained)
    assert parent.data.tags[TAG_STOP_REASON] == record.stop_reason
    assert parent.data.metrics["search_total_flops"] == pytest.approx(record.total_flops)
    assert parent.data.metrics["search_budget_flops"] == budget
