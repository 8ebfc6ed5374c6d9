"""A real search with a parameter budget: over-budget proposals are PRUNED and never trained."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from rsearch.rundir import REJECTED_ATTR
from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.mlflow_checks import search_runs

pytestmark = pytest.mark.slow

SPEC = """\
name: budget
objective: {metric: val_top1, mode: max}
search:
  algorithm: tpe
  num_trials: 2
  max_concurrent: 2
  seed: 0
  # resnet18 (11.7 M parameters) first: over the 1 M budget, it must be refused untrained
  warm_start: [{model.name: resnet18}, {model.name: test_resnet}, {model.name: resnet18}]
scheduler: {type: none}
resources: {workers_per_trial: 1, cpus_per_worker: 1}
base:
  model: {name: test_resnet}
  data: {dataset: digits, image_size: 16, batch_size: 64, fraction: 0.25}
  augment: {random_resized_crop: false, hflip: 0.0}
  epochs: 1
space:
  model.name: {type: categorical, choices: [test_resnet, resnet18]}
constraints: {max_params_m: 1.0}
"""


def test_over_budget_trials_never_train(ray_2cpu: None, tmp_path: Path) -> None:
    path = tmp_path / "budget.yaml"
    path.write_text(SPEC + f"storage: {tmp_path / 'runs'}\n")
    spec = load_spec(path)
    info = run_search(spec, path, live=False)
    assert info.num_trials == 2 and not info.errors

    trials = load_study(info.run_dir, spec).trials
    refused = [t for t in trials if REJECTED_ATTR in t.user_attrs]
    trained = [t for t in trials if REJECTED_ATTR not in t.user_attrs]
    assert len(refused) >= 2  # both resnet18 warm starts, and any TPE proposal of it
    for t in refused:
        assert t.params["model.name"] == "resnet18"
        assert t.state == optuna.trial.TrialState.PRUNED
        assert "M params > max_params_m 1" in t.user_attrs[REJECTED_ATTR]
        assert "tune_trial_id" not in t.user_attrs and "metrics" not in t.user_attrs
        assert not t.intermediate_values
    assert len(trained) == 2
    for t in trained:
        assert t.params["model.name"] == "test_resnet"
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.user_attrs["metrics"]["params_m"] <= 1.0

    # Ray Train ran exactly the two trials within budget; MLflow saw only them
    tune_ids = {t.user_attrs["tune_trial_id"] for t in trained}
    train_runs = sorted(p.name for p in (info.run_dir / "train").iterdir() if p.is_dir())
    assert len(train_runs) == 2
    assert {name.split("-")[1] for name in train_runs} == tune_ids  # trial-<tune id>-<time>
    _, children = search_runs(info.run_dir)
    assert {c.data.tags["rsearch.trial_id"] for c in children} == tune_ids
