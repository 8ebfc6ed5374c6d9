"""A search whose driver is killed with SIGKILL again and again still ends whole.

`rsearch run` is killed (its whole process group: the driver and its embedded Ray, as a crash
of the machine would) once per cycle: run -> kill -> resume -> kill -> ... -> a last resume
that completes. The first kill comes at a chosen moment (the third trial's first result,
recorded, with Tune's snapshot stale: that trial is lost with the driver, its Optuna proposal
adopted by a new Tune trial on resume, and the child run it had made must go); the next ones
at delays drawn from a seeded RNG over a resume's span, from Ray's start to well into
training. After it, the search holds exactly the requested trials, each with its own
configuration, MLflow one parent and one child run per trial and no other run, and no
(metric, step) of any child is logged twice.

Rung decisions. An uninterrupted reference run cannot be compared trial by trial: a resumed
driver's sampler is seeded apart from the run it continues (else it would propose the first
trials again), so trials asked after a kill get other configurations than the reference's;
and ASHA's rung records live in Tune's experiment snapshot, so a result reported after the
last snapshot before a kill is missing from the rung it was recorded at (or replayed, when
the trial restarts from an earlier checkpoint). What holds whatever the order and the lost
records, and is checked: each trial stopped at a rung milestone or at its epoch budget (a
kill never leaves a trial cut between rungs), and at each rung the best trial that reached
it went on (ASHA never stops the leader of a rung). How many decisions differ from ASHA's
rule replayed over the results in the order MLflow received them is recorded as a figure.

CI kills it three times (the chosen moment, then two random ones: a resume of a resumed run is
killed too); `RSEARCH_FULL_FIGURES=1` kills it the six times docs/reliability.md quotes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from rsearch.rundir import TUNE_TRIAL_ID_ATTR
from rsearch.tracking.runs import TAG_STUDY_TRIAL, TAG_TRIAL_ID
from rsearch.tune.kill_points import KILL_AT_ENV
from tests.reliability.audit import MAX_RUNS, check_ended, repeated_steps, search_runs
from tests.reliability.figures import full_size, record
from tests.study_helpers import load_study
from tests.tune.conftest import kill_group, write_spec

pytestmark = pytest.mark.slow

TRIALS = 4
EPOCHS = 3
MILESTONES = (1, 2)
"""ASHA's rungs below the budget at grace period 1, reduction factor 2, max_t 3."""
KILLS = 5 if full_size() else 2
"""Kills at random moments, after the first one at a chosen moment."""
SEED = 20261129
"""Seeds the kill delays; printed, and recorded with the figures."""
SPAN_S = (10.0, 40.0)
"""Kill delays (s after the driver starts): from Ray's start to well into training."""


def _spec(tmp_path: Path) -> Path:
    path = write_spec(
        tmp_path,
        trials=TRIALS,
        concurrent=2,
        scheduler="{type: asha, grace_period: 1, reduction_factor: 2}",
        epochs=EPOCHS,
    )
    path.write_text(path.read_text().replace("fraction: 0.5", "fraction: 0.2"))
    return path


def _run_and_kill(args: list[str], env: dict[str, str], delay: float, log: Path) -> bool:
    """Start `rsearch <args>` in a session of its own; SIGKILL it after delay s.

    Returns:
        True when it was killed (by us, or by itself at a kill point), False when it ended
        by itself first (then it must have succeeded).
    """
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rsearch.cli", *args, "--no-live"],
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        code = proc.returncode
        if code is None:
            proc.kill()
            proc.wait()  # reaped: a zombie would keep its process group alive
        kill_group(proc.pid)
    if code is None or code == -signal.SIGKILL:
        return True
    assert code == 0, log.read_text()[-3000:]
    return False


def test_a_search_killed_again_and_again_ends_with_every_trial_once(tmp_path: Path) -> None:
    path = _spec(tmp_path)
    db = tmp_path / "mlflow.db"
    store = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": store}
    env.pop(KILL_AT_ENV, None)
    rng = random.Random(SEED)
    delays = [round(rng.uniform(*SPAN_S), 1) for _ in range(KILLS)]
    print(f"kill seed {SEED}: delays {delays} s")

    started = time.monotonic()
    # First kill: at the third trial's first result, with Tune's snapshot stale (taken once,
    # at the start, when it held the first two trials): the third trial is lost with the
    # driver, its proposal adopted on resume, and its child run must go.
    first = {**env, KILL_AT_ENV: "first_result_recorded@3", "TUNE_GLOBAL_CHECKPOINT_S": "3600"}
    assert _run_and_kill(["run", str(path)], first, 600, tmp_path / "run.log")
    (run_dir,) = (tmp_path / "runs").glob("tiny-*")
    _, before = search_runs(run_dir, store)
    killed = []
    for cycle, delay in enumerate(delays, 1):
        args = ["resume", str(run_dir)]
        killed.append(_run_and_kill(args, env, delay, tmp_path / f"resume{cycle}.log"))
    assert all(killed), f"the search ended before kill {killed.index(False) + 1}: {delays}"
    final = tmp_path / "final.log"
    assert not _run_and_kill(["resume", str(run_dir)], env, 900, final), "no end in 900 s"
    assert "run directory: " in final.read_text()
    wall = time.monotonic() - started

    trials = load_study(run_dir).trials
    assert len(trials) == TRIALS
    assert all(t.state.is_finished() for t in trials), [t.state for t in trials]
    configs = [sorted(t.params.items()) for t in trials]
    assert all(configs.count(c) == 1 for c in configs), "a resume proposed a trial again"
    children = _check_one_child_per_trial(run_dir, store, trials)
    assert repeated_steps(db) == [], "a metric step logged twice"
    ghosts = _check_ghosts_deleted(before, trials, store)

    scores = _rung_scores(trials)
    _check_rungs(trials, scores)
    replayed = _replayed_decisions(db, children, trials)
    record(
        # The table's row is the full size's; CI's smaller run records under its own name.
        "driver SIGKILL + resume" + ("" if full_size() else f" ({KILLS + 1} kills)"),
        f"`rsearch run` killed once at a trial's first result, then {KILLS} times at random"
        f" moments (seed {SEED}), resumed after each",
        KILLS + 1,
        "nothing",
        trials=TRIALS,
        kill_delays_s=delays,
        wall_s=round(wall, 1),
        ghost_runs_deleted=ghosts,
        rung_decisions=sum(len(v) for v in scores.values()),
        decisions_unlike_replay=replayed,
    )


def _check_one_child_per_trial(
    run_dir: Path, store: str, trials: list[optuna.trial.FrozenTrial]
) -> dict[str, Any]:
    """One finished child run per study trial, named after the Tune trial the study records
    for it, and no other active run in the experiment; returns them by study trial."""
    parent, children = search_runs(run_dir, store)
    assert parent.info.status == "FINISHED"
    by_number = {c.data.tags[TAG_STUDY_TRIAL]: c for c in children}
    assert len(children) == len(by_number) == TRIALS
    assert set(by_number) == {str(t.number) for t in trials}
    for t in trials:
        child = by_number[str(t.number)]
        tune_id = t.user_attrs[TUNE_TRIAL_ID_ATTR]
        assert child.data.tags[TAG_TRIAL_ID] == child.info.run_name == tune_id
    check_ended(trials, by_number)
    everything = MlflowClient(store).search_runs(
        [parent.info.experiment_id], run_view_type=ViewType.ALL, max_results=MAX_RUNS
    )
    active = [r for r in everything if r.info.lifecycle_stage == "active"]
    assert len(active) == 1 + TRIALS, "no run besides the search and its trials"
    return by_number


def _check_ghosts_deleted(
    before: list[Any], trials: list[optuna.trial.FrozenTrial], store: str
) -> int:
    """The child runs of Tune trials lost at the first kill are deleted; returns how many."""
    final = {t.user_attrs[TUNE_TRIAL_ID_ATTR] for t in trials}
    ghosts = [c for c in before if c.data.tags[TAG_TRIAL_ID] not in final]
    assert ghosts, "the stale snapshot lost no trial: the first kill came too early or late"
    client = MlflowClient(store)
    for ghost in ghosts:
        assert client.get_run(ghost.info.run_id).info.lifecycle_stage == "deleted"
    return len(ghosts)


def _rung_scores(trials: list[optuna.trial.FrozenTrial]) -> dict[int, dict[int, float]]:
    """Each trial's score at each rung it reached: rung -> study trial -> score."""
    return {
        rung: {
            t.number: t.intermediate_values[rung] for t in trials if rung in t.intermediate_values
        }
        for rung in MILESTONES
    }


def _check_rungs(
    trials: list[optuna.trial.FrozenTrial], scores: dict[int, dict[int, float]]
) -> None:
    """Every trial stopped at a rung or its budget; every rung's leader went on."""
    for t in trials:
        epochs = sorted(t.intermediate_values)
        assert epochs == list(range(1, len(epochs) + 1)), (t.number, epochs)
        assert epochs[-1] in (*MILESTONES, EPOCHS), (t.number, epochs)
    for rung, at_rung in scores.items():
        leader = max(at_rung, key=lambda n: at_rung[n])
        assert max(trials[leader].intermediate_values) > rung, (rung, at_rung)


def _replayed_decisions(
    db: Path, children: dict[str, Any], trials: list[optuna.trial.FrozenTrial]
) -> int:
    """How many rung decisions differ from ASHA's rule over results in MLflow's arrival order.

    Ray's ASHA stops a trial at a rung when its score is below the (1 - 1/rf) quantile of the
    scores recorded at that rung before it; the order is when each result reached the driver,
    which MLflow's metric timestamps keep.
    """
    client = MlflowClient(f"sqlite:///{db}")
    events = []
    for number, child in children.items():
        run_id = child.info.run_id
        for m in client.get_metric_history(run_id, "val_top1"):
            if m.step in MILESTONES:
                events.append((m.timestamp, m.step, int(number), m.value))
    recorded: dict[int, list[float]] = {rung: [] for rung in MILESTONES}
    differ = 0
    for _, rung, number, value in sorted(events):
        earlier = recorded[rung]
        stops = bool(earlier) and value < float(np.nanpercentile(earlier, 50))
        earlier.append(value)
        differ += stops != (max(trials[number].intermediate_values) == rung)
    return differ
