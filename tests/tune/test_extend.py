"""`rsearch extend` on a real search (real Ray, Optuna journal, MLflow store), then an
extension interrupted before its trials ran, finished by `rsearch resume`.

A finished two-trial search is extended by two trials with a narrowed range: the study then
holds exactly four trials, the extension's first proposal is what its sampler proposes over
the two old trials (and not over none), and MLflow holds one parent run with four children.
A second extension whose driver stops once Tune's experiment and the record exist (as a crash
would leave it) is refused a further extension and finished by `rsearch resume`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.report.data import tune_traces
from rsearch.rundir import TUNE_TRIAL_ID_ATTR, open_run
from rsearch.spec import SearchSpec, load_spec
from rsearch.tracking.runs import TAG_STUDY_TRIAL, TAG_TRIAL_ID
from rsearch.tune.driver import run_search
from rsearch.tune.extend import prepare_extension
from rsearch.tune.searchers import make_sampler
from rsearch.tune.space import propose
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.mlflow_checks import search_runs

pytestmark = pytest.mark.slow
runner = CliRunner()

NARROWED = "space.optim.lr.high=0.1"
COMPLETE = optuna.trial.TrialState.COMPLETE


def test_extend_continues_the_study_and_the_parent_run(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(tmp_path, name="ext", trials=2, scheduler="{type: none}", epochs=1)
    warm = "search.warm_start=[{optim.lr: 0.05, loss.label_smoothing: 0.0}]"
    info = run_search(load_spec(path, [warm]), path, live=False)
    run_dir = info.run_dir
    old = load_study(run_dir).trials
    assert [t.state for t in old] == [COMPLETE] * 2

    res = runner.invoke(
        app, ["extend", str(run_dir), "--trials", "2", "--set", NARROWED, "--no-live"]
    )
    assert res.exit_code == 0, res.output
    # The same closing lines as `rsearch run`: the best trial, its gain, where things are.
    assert "gain over the warm-start recipe (trial 0): " in res.stdout, res.stdout
    assert f"run directory: {run_dir}" in res.stdout and "report: " in res.stdout

    run = open_run(run_dir)
    assert run.spec.search.num_trials == 4 and run.spec.space["optim.lr"].high == 0.1
    trials = load_study(run_dir).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]  # exactly the two trials added
    assert [t.state for t in trials] == [COMPLETE] * 4
    for before, after in zip(old, trials, strict=False):  # the old trials did not run again
        assert (after.params, after.datetime_complete) == (before.params, before.datetime_complete)
    assert all(0.001 <= t.params["optim.lr"] <= 0.1 for t in trials[2:])
    # The sampler conditioned on the old trials: its first proposal is the one it makes over
    # them, which differs from the one it makes over an empty study.
    assert trials[2].params == _proposal(run.spec, old) != _proposal(run.spec, [])
    # Tune: the new trials ran in the extension's own experiment; the report reads both.
    assert (run_dir / "extend-1" / "tuner.pkl").is_file()
    assert _tune_ids(trials) <= set(tune_traces(run.experiment_dirs))
    _check_mlflow(run_dir, trials, best_steps=[2, 4])

    # An extension interrupted before its trial ran: refused again, finished by resume.
    prepare_extension(run_dir, 1, live=False)
    refused = runner.invoke(app, ["extend", str(run_dir), "--trials", "1", "--no-live"])
    assert refused.exit_code == 2 and f"`rsearch resume {run_dir}`" in refused.stderr
    res = runner.invoke(app, ["resume", str(run_dir), "--no-live"])
    assert res.exit_code == 0, res.output
    trials = load_study(run_dir).trials
    assert [t.state for t in trials] == [COMPLETE] * 5
    assert _tune_ids(trials[4:]) <= set(tune_traces([run_dir / "extend-2"]))
    _check_mlflow(run_dir, trials, best_steps=[2, 4, 5])


def _proposal(spec: SearchSpec, history: list[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """The first proposal of extension 1's sampler in a study holding only `history`."""
    study = optuna.create_study(sampler=make_sampler(spec, extension=1), direction="maximize")
    study.add_trials(history)
    return propose(study, spec)[1]


def _tune_ids(trials: list[optuna.trial.FrozenTrial]) -> set[str]:
    return {t.user_attrs[TUNE_TRIAL_ID_ATTR] for t in trials}


def _check_mlflow(
    run_dir: Path, trials: list[optuna.trial.FrozenTrial], best_steps: list[int]
) -> None:
    """One parent, one child per study trial, the best one tagged, the best metric refreshed."""
    parent, children = search_runs(run_dir)
    assert parent.info.status == "FINISHED"
    by_number = {c.data.tags[TAG_STUDY_TRIAL]: c for c in children}
    assert len(children) == len(trials) and set(by_number) == {str(t.number) for t in trials}
    for t in trials:
        child = by_number[str(t.number)]
        assert child.data.tags[TAG_TRIAL_ID] == t.user_attrs[TUNE_TRIAL_ID_ATTR]
        assert child.info.status == "FINISHED"
    best = max(trials, key=lambda t: t.values[0])  # the first of equals, as Optuna picks
    tagged = [c.data.tags[TAG_STUDY_TRIAL] for c in children if "rsearch.best" in c.data.tags]
    assert tagged == [str(best.number)]
    assert parent.data.tags["rsearch.best_trial_id"] == best.user_attrs[TUNE_TRIAL_ID_ATTR]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    history = client.get_metric_history(parent.info.run_id, "best_val_top1")
    assert sorted(m.step for m in history) == best_steps
