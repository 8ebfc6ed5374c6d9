"""Real searches on a real local Ray (2 CPUs) with real training on the digits data."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.errors import UserError
from rsearch.spec import load_recipe, load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study, run_best, run_trials
from tests.tune.conftest import write_spec
from tests.tune.leaks import assert_nothing_left
from tests.tune.mlflow_checks import epoch_steps, search_runs

pytestmark = pytest.mark.slow
runner = CliRunner()

# Two good learning rates first, then two that cannot learn in one epoch: ASHA must stop the
# late, weak ones at its first rung, which makes the pruning deterministic.
WARM = "[{optim.lr: 0.05, loss.label_smoothing: 0.0}, {optim.lr: 0.08, loss.label_smoothing: 0.0},\
 {optim.lr: 0.001, loss.label_smoothing: 0.0}, {optim.lr: 0.0011, loss.label_smoothing: 0.0}]"


def test_asha_search_prunes_and_exports(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(tmp_path, algorithm="tpe", epochs=3)
    spec = load_spec(path, [f"search.warm_start={WARM}"])
    info = run_search(spec, path, live=False)

    study = load_study(info.run_dir, spec)
    trials = study.trials
    assert len(trials) == 4
    states = [t.state for t in trials]
    assert all(s.is_finished() for s in states)
    for t in trials:
        epochs = t.user_attrs["metrics"]["epoch"]
        if epochs < 3:
            # stopped by ASHA: PRUNED with its per-epoch values, never COMPLETE
            assert t.state == optuna.trial.TrialState.PRUNED, t
            assert sorted(t.intermediate_values) == list(range(1, int(epochs) + 1))
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE, t
            assert t.values[0] == pytest.approx(t.user_attrs["metrics"]["val_top1"])
    assert optuna.trial.TrialState.PRUNED in states
    assert optuna.trial.TrialState.COMPLETE in states

    # MLflow: one parent, a child per trial with its status, recipe and per-epoch metrics
    parent, children = search_runs(info.run_dir)
    assert len(children) == 4
    by_trial = {c.data.tags["rsearch.trial_id"]: c for c in children}
    for t in trials:
        child = by_trial[t.user_attrs["tune_trial_id"]]
        epochs = int(t.user_attrs["metrics"]["epoch"])
        assert epoch_steps(child.info.run_id) == list(range(1, epochs + 1))
        assert child.data.params["optim.lr"] == str(t.params["optim.lr"])
        # The trainer's metrics (the metrics table), not Tune's bookkeeping
        assert "val_top1" in child.data.metrics and "time_total_s" not in child.data.metrics
        assert child.data.metrics["startup_s"] > 0  # the driver's, on the first result
        if t.state == optuna.trial.TrialState.PRUNED:
            assert child.info.status == "KILLED" and child.data.tags["rsearch.pruned"] == "true"
        else:
            assert child.info.status == "FINISHED"
    assert parent.info.status == "FINISHED"

    # The trials ran on their drivers' resident Train runs: fewer runs than trials, each
    # trial's checkpoints named after it; and the finished search leaves nothing running.
    train = info.run_dir / "train"
    assert 1 <= len([d for d in train.iterdir() if d.is_dir()]) < len(trials)
    for t in trials:
        assert list(train.glob(f"*/{t.user_attrs['tune_trial_id']}-*-e*/checkpoint.pt")), t
    assert_nothing_left()

    _, best = run_best(info.run_dir)
    assert best[0].values == [max(t.values[0] for t in trials if t.values)]
    export = tmp_path / "best.yaml"
    res = runner.invoke(
        app, ["best", str(info.run_dir), "--format", "json", "--export", str(export)]
    )
    assert res.exit_code == 0, res.output
    recipe = load_recipe(export)
    assert recipe.optim.lr == best[0].params["optim.lr"]
    assert recipe.model.name == "test_resnet"


def test_multi_objective_returns_non_dominated_set(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        name="pareto",
        objective="[{metric: val_top1, mode: max}, {metric: params_m, mode: min}]",
        algorithm="nsga2",
        scheduler="{type: none}",
        epochs=1,
    )
    models = "  model.name: {type: categorical, choices: [test_resnet, resnet10t]}\n"
    text = path.read_text().replace("  loss.label_smoothing:", models + "  loss.label_smoothing:")
    path.write_text(text)
    spec = load_spec(path)
    info = run_search(spec, path, live=False)
    _, outcomes = run_trials(info.run_dir)
    done = [o for o in outcomes if o.state == "COMPLETE"]
    assert len(done) == 4

    def dominates(a: list[float], b: list[float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])

    expected = {o.number for o in done if not any(dominates(p.values, o.values) for p in done)}
    _, front = run_best(info.run_dir)
    assert {o.number for o in front} == expected


def test_trial_larger_than_cluster_fails_before_any_trial(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    spec = load_spec(path, ["resources.cpus_per_worker=4"])
    with pytest.raises(UserError, match="a trial needs 4 CPUs .* the cluster has 2"):
        run_search(spec, path, live=False)
    assert not (tmp_path / "runs").exists()


def test_unreachable_address_is_a_clear_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    res = runner.invoke(app, ["run", str(path), "--address", "127.0.0.1:9", "--no-live"])
    assert res.exit_code == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in res.stderr


def test_not_a_run_directory(tmp_path: Path) -> None:
    res = runner.invoke(app, ["best", str(tmp_path)])
    assert res.exit_code == 2 and "is not an rsearch run directory" in res.stderr
