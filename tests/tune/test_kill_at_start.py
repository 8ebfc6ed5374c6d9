"""A driver killed at any moment of a trial's start-up resumes with one MLflow child run per
study trial: the child run follows the Optuna trial, not the Tune trial that first ran it.

The slow tests kill `rsearch run` with SIGKILL (`RSEARCH_TEST_KILL_AT`, see
`rsearch.tune.kill_points`) at each moment of the second trial's start, take its embedded Ray
down with it (its whole process group, as a reboot would), run `rsearch resume`, and read the
study and the MLflow store. Tune's experiment snapshot is either stale (taken once, at the
start: the second trial is lost with the driver and its Optuna trial is adopted by a new Tune
trial) or fresh (taken every step: Tune restores the second trial itself).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from rsearch.rundir import TUNE_TRIAL_ID_ATTR
from rsearch.spec import parse_spec_text
from rsearch.tracking import find_search_run
from rsearch.tracking.runs import TAG_STUDY_TRIAL, TAG_TRIAL_ID
from rsearch.tune.kill_points import KILL_AT_ENV, MOMENTS, kill_point
from rsearch.tune.optuna_searcher import OPTUNA_TRIAL, PARAMS, OptunaSearcher
from rsearch.tune.tracking_callback import _study_trial
from tests.study_helpers import load_study
from tests.tune.conftest import kill_group, write_spec

SPEC = """
name: s
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 2}
scheduler: {type: none}
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""

SNAPSHOT_PERIOD = {"stale": "3600", "fresh": "0"}
"""Seconds between Tune's experiment snapshots (TUNE_GLOBAL_CHECKPOINT_S) in the killed run."""

MADE_A_CHILD = ("child_opened", "first_result", "first_result_recorded")
"""Moments at which the killed trial's child run exists in MLflow."""

# -- fast: what each process knows --------------------------------------------------------


def _searcher(tmp_path: Path) -> OptunaSearcher:
    return OptunaSearcher(parse_spec_text(SPEC), tmp_path / "optuna.journal", budget_epochs=2)


def test_a_suggested_config_names_its_study_trial(tmp_path: Path) -> None:
    s = _searcher(tmp_path)
    a, b = s.suggest("a"), s.suggest("b")
    assert a is not None and b is not None
    trials = s.study.trials
    assert [a[OPTUNA_TRIAL], b[OPTUNA_TRIAL]] == [t.number for t in trials] == [0, 1]
    assert [t.user_attrs[TUNE_TRIAL_ID_ATTR] for t in trials] == ["a", "b"]


def test_an_adopted_orphan_keeps_its_study_trial_number(tmp_path: Path) -> None:
    first = _searcher(tmp_path)
    first.suggest("a")
    first.save(str(tmp_path / "state.pkl"))  # Tune's last snapshot
    lost = first.suggest("b")  # asked, then the driver was killed
    assert lost is not None

    second = _searcher(tmp_path)
    second.restore(str(tmp_path / "state.pkl"))
    adopted = second.suggest("b2")
    assert adopted == {PARAMS: lost[PARAMS], OPTUNA_TRIAL: 1}
    assert second.study.trials[1].user_attrs[TUNE_TRIAL_ID_ATTR] == "b2"


@pytest.mark.parametrize(
    ("config", "number"),
    [
        ({PARAMS: {}, OPTUNA_TRIAL: 3}, 3),
        ({PARAMS: {}, OPTUNA_TRIAL: 0}, 0),
        ({PARAMS: {}}, None),  # a trial restored from a snapshot of an older version
        ({PARAMS: {}, OPTUNA_TRIAL: -1}, None),  # PBT's unresolved placeholder
        ({PARAMS: {}, OPTUNA_TRIAL: True}, None),
    ],
)
def test_the_tracking_callback_reads_the_study_trial_from_the_config(
    config: dict[str, Any], number: int | None
) -> None:
    assert _study_trial(SimpleNamespace(config=config)) == number


def _run_kill_points(target: str) -> subprocess.CompletedProcess[str]:
    code = (
        "from rsearch.tune.kill_points import kill_point\n"
        "for i in range(3):\n"
        "    kill_point('child_opened')\n"
        "    kill_point('asked')\n"
        "    print(i, flush=True)\n"
    )
    env = {**os.environ, KILL_AT_ENV: target}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_driver_kills_itself_the_nth_time_it_reaches_the_moment() -> None:
    done = _run_kill_points("asked@2")
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.split() == ["0"]
    assert _run_kill_points("asked").stdout.split() == []


def test_kill_points_do_nothing_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KILL_AT_ENV, raising=False)
    for moment in MOMENTS:
        kill_point(moment)
    monkeypatch.setenv(KILL_AT_ENV, "first_result@5")
    kill_point("asked")  # another moment: nothing
    with pytest.raises(ValueError, match="unknown kill point"):
        kill_point("akwed")


@pytest.mark.parametrize("target", ["nope", "asked@0", "asked@x", "asked@-1"])
def test_a_malformed_kill_target_is_refused(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    monkeypatch.setenv(KILL_AT_ENV, target)
    with pytest.raises(ValueError, match=KILL_AT_ENV):
        kill_point("child_opened")


# -- slow: real searches killed and resumed -----------------------------------------------

STALE = ("asked",)
"""With a stale snapshot (the adopting path, where the ghost was made): before the child run
exists. A kill once a result of it is queued (its child run exists: the adopting trial
replaces it and the old run is deleted) is the first kill of
tests/reliability/test_driver_kill.py, which kills the same search again and again;
`trial_started`, `child_opened` and `first_result` sit between these on the same paths; they
are left out to keep the suite within CI's time (the fast tests above cover each moment's
kill point)."""
CASES = [(m, "stale") for m in STALE]
"""A kill with a fresh snapshot once the killed trial has a result (Tune restores the trial
itself, nothing is adopted) is among the random kills of tests/reliability/test_driver_kill.py
(earlier moments take the adopting path even with a fresh snapshot: a reused actor starts a
trial in the same Tune step that adds it, so no snapshot can hold the trial before it trains)."""


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "snapshot"), CASES)
def test_killed_at_a_trial_start_resumes_with_one_child_run_per_study_trial(
    tmp_path: Path, moment: str, snapshot: str
) -> None:
    path = write_spec(tmp_path, trials=3, concurrent=1, scheduler="{type: none}", epochs=2)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": store}
    env.pop(KILL_AT_ENV, None)
    killed_env = {
        **env,
        KILL_AT_ENV: f"{moment}@2",  # the second trial's start: the first one has finished
        "TUNE_GLOBAL_CHECKPOINT_S": SNAPSHOT_PERIOD[snapshot],
    }
    _run_until_killed(path, killed_env, tmp_path / "first.log")
    (run_dir,) = (tmp_path / "runs").glob("tiny-*")
    killed_id = load_study(run_dir).trials[1].user_attrs[TUNE_TRIAL_ID_ATTR]
    old_runs = _children(run_dir, store)
    if moment in MADE_A_CHILD:  # the run that would have been left behind exists
        assert killed_id in {c.data.tags[TAG_TRIAL_ID] for c in old_runs}

    done = subprocess.run(
        [sys.executable, "-m", "rsearch.cli", "resume", str(run_dir), "--no-live"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    trials = load_study(run_dir).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)
    # A stale snapshot lost the killed Tune trial: its Optuna trial went to a new one.
    adopted = trials[1].user_attrs[TUNE_TRIAL_ID_ATTR] != killed_id
    assert adopted == (snapshot == "stale" or moment == "asked")
    _check_one_child_per_study_trial(run_dir, store, trials)
    if adopted and moment in MADE_A_CHILD:
        (old,) = [c for c in old_runs if c.data.tags[TAG_TRIAL_ID] == killed_id]
        deleted = MlflowClient(store).get_run(old.info.run_id)
        assert deleted.info.lifecycle_stage == "deleted"


def _run_until_killed(spec: Path, env: dict[str, str], log_path: Path) -> None:
    """Run the search until its driver kills itself; then take its Ray down too."""
    with log_path.open("w") as log:
        # A session of its own, so killing its process group ends Ray's processes as well.
        proc = subprocess.Popen(
            [sys.executable, "-m", "rsearch.cli", "run", str(spec), "--no-live"],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=600)
        finally:
            kill_group(proc.pid)
    assert proc.returncode == -signal.SIGKILL, log_path.read_text()[-3000:]


def _children(run_dir: Path, store: str) -> list[Any]:
    parent = find_search_run(run_dir, store)
    assert parent is not None, f"no parent run for {run_dir}"
    return MlflowClient(store).search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )


def _check_one_child_per_study_trial(
    run_dir: Path, store: str, trials: list[optuna.trial.FrozenTrial]
) -> None:
    client = MlflowClient(store)
    parent = find_search_run(run_dir, store)
    assert parent is not None
    children = _children(run_dir, store)
    everything = client.search_runs([parent.info.experiment_id], run_view_type=ViewType.ALL)
    active = [r for r in everything if r.info.lifecycle_stage == "active"]
    assert len(active) == 1 + len(children), "no run besides the search and its trials"
    by_number = {c.data.tags.get(TAG_STUDY_TRIAL): c for c in children}
    assert len(by_number) == len(children) == len(trials), [c.info.run_name for c in children]
    assert set(by_number) == {str(t.number) for t in trials}
    for trial in trials:
        child = by_number[str(trial.number)]
        tune_id = trial.user_attrs[TUNE_TRIAL_ID_ATTR]
        assert child.data.tags[TAG_TRIAL_ID] == child.info.run_name == tune_id
        assert child.info.status == "FINISHED"
        history = client.get_metric_history(child.info.run_id, "val_top1")
        assert sorted(m.step for m in history) == [1, 2], "each epoch logged once"
