"""Resume: a search whose driver (and its embedded Ray) is killed finishes with all its trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from rsearch.rundir import STUDY_FILE
from rsearch.spec import load_spec
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.mlflow_checks import epoch_steps, search_runs

pytestmark = pytest.mark.slow


def _finished_trials(run_dir: Path, spec_path: Path) -> int:
    if not (run_dir / STUDY_FILE).is_file():
        return 0
    trials = load_study(run_dir, load_spec(spec_path)).trials
    return sum(t.state.is_finished() for t in trials)


def test_resume_after_killed_driver(tmp_path: Path) -> None:
    path = write_spec(tmp_path, trials=4, concurrent=1, scheduler="{type: none}", epochs=2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rsearch = [sys.executable, "-m", "rsearch.cli"]
    log = (tmp_path / "first.log").open("w")
    # A session of its own, so killing its process group takes Ray's processes down too,
    # as a reboot would.
    proc = subprocess.Popen(
        [*rsearch, "run", str(path), "--no-live"],
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 300
    run_dir = None
    while time.time() < deadline:
        runs = list((tmp_path / "runs").glob("tiny-*"))
        if runs and _finished_trials(runs[0], path) >= 2:
            run_dir = runs[0]
            break
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(1)
    assert run_dir is not None, "the first two trials did not finish in time"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    spec = load_spec(path)
    before = {t.number: t.state for t in load_study(run_dir, spec).trials}
    assert sum(s.is_finished() for s in before.values()) >= 2
    assert len(before) < 4 or not all(s.is_finished() for s in before.values())

    done = subprocess.run(
        [*rsearch, "resume", str(run_dir), "--no-live"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = load_study(run_dir, spec).trials
    assert len(after) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in after)
    for number, state in before.items():
        if state.is_finished():  # finished trials were not run again
            assert after[number].datetime_complete is not None
    assert "run directory: " in done.stdout

    # MLflow: the resumed search kept its parent and child runs, with no step logged twice
    _, children = search_runs(run_dir)
    assert len(children) == 4
    # one child run per study trial, named after the Tune trial the study records for it
    runs = {c.data.tags["rsearch.optuna_trial"]: c.info.run_name for c in children}
    assert runs == {str(t.number): t.user_attrs["tune_trial_id"] for t in after}
    for child in children:
        assert epoch_steps(child.info.run_id) == [1, 2]
        assert child.info.status == "FINISHED"
