"""`rsearch extend RUN_DIR --trials N`: its user errors, each told before any Ray starts.

Extending a real finished search (new trials in the same study, children of the same MLflow
parent run) is the slow tests/tune/test_extend.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from rsearch.rundir import EXTENSIONS, MANIFEST
from tests.cli.helpers import fails_cleanly, invoke
from tests.cluster.helpers import forget_this_machines_ray
from tests.report.rundirs import Trial, make_run, random_trials


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A search whose three trials all completed."""
    run_dir, _ = make_run(tmp_path, random_trials(3, 41, ("val_top1",)))
    return run_dir


def test_widening_is_refused_with_old_and_new_range(finished: Path) -> None:
    fails_cleanly(
        "extend",
        finished,
        "--trials",
        "2",
        "--set",
        "space.optim.lr.low=0.0001",
        "--no-live",
        expect="error: --set:1:1: space.optim.lr: range [0.0001, 0.3] widens [0.001, 0.3]; an "
        "extended search may only narrow a range (low >= 0.001, high <= 0.3)",
    )
    assert not (finished / EXTENSIONS).exists()


def test_every_refused_change_is_told_at_once(finished: Path) -> None:
    err = fails_cleanly(
        "extend",
        finished,
        "--trials",
        "2",
        "--set",
        "space.loss.label_smoothing.high=0.5",
        "--set",
        "base.epochs=5",
        "--no-live",
        expect="--set:2:1: base.epochs: the base recipe cannot change when extending a search "
        "(3 -> 5)",
        lines=2,
    )
    assert "--set:1:1: space.loss.label_smoothing: range [0, 0.5] widens [0, 0.2]" in err


@pytest.mark.parametrize("count", ["0", "-1"])
def test_trials_must_be_positive(finished: Path, count: str) -> None:
    res = invoke("extend", finished, "--trials", count, "--no-live")
    assert res.exit_code == 2
    assert "Invalid value for '--trials'" in res.stderr
    assert "Traceback" not in res.output


def test_trials_are_required(finished: Path) -> None:
    res = invoke("extend", finished, "--no-live")
    assert res.exit_code == 2 and "Missing option '--trials'" in res.stderr


def test_not_a_run_directory(tmp_path: Path) -> None:
    fails_cleanly(
        "extend",
        tmp_path,
        "--trials",
        "2",
        "--no-live",
        expect=f"error: {tmp_path} is not an rsearch run directory (no {MANIFEST})",
    )


def test_an_interrupted_search_is_sent_to_resume(tmp_path: Path) -> None:
    running = Trial(TrialState.RUNNING, {"optim.lr": 0.01, "loss.label_smoothing": 0.1})
    run_dir, _ = make_run(tmp_path, [*random_trials(2, 42, ("val_top1",)), running])
    fails_cleanly(
        "extend",
        run_dir,
        "--trials",
        "2",
        "--no-live",
        expect=f"has not finished (3 of 3 trials started; trial(s) 2 not finished): if it still "
        f"runs, wait for it; if it was interrupted, finish it with `rsearch resume {run_dir}`",
    )


def test_help_lists_extend_after_resume() -> None:
    res = invoke("--help")
    assert res.exit_code == 0
    assert res.output.index(" resume ") < res.output.index(" extend ") < res.output.index(" best ")
