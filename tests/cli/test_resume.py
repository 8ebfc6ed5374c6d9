"""`rsearch resume RUN_DIR`: its user errors, each one message and exit 2.

A run directory with nothing to resume is told before Ray starts. Resuming a real interrupted
search (its driver killed again and again, every trial finished after) is the slow
tests/reliability/test_driver_kill.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.rundir import MANIFEST, SPEC_RESOLVED, STUDY_FILE, read_manifest
from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port, forget_this_machines_ray
from tests.report.rundirs import make_run, random_trials


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def test_not_a_run_directory(tmp_path: Path) -> None:
    fails_cleanly(
        "resume",
        tmp_path,
        "--no-live",
        expect=f"error: {tmp_path} is not an rsearch run directory (no {MANIFEST})",
    )


def test_unreachable_address(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 31, ("val_top1",)))
    # Tune's experiment state, as a driver killed mid-search leaves it: the address is next.
    (run_dir / "tuner.pkl").write_bytes(b"")
    address = f"127.0.0.1:{closed_port()}"
    fails_cleanly(
        "resume",
        run_dir,
        "--address",
        address,
        "--no-live",
        expect=f"cannot reach the Ray cluster at {address}",
    )


def test_run_directory_without_tune_state(tmp_path: Path) -> None:
    """Told before any Ray starts."""
    run_dir, _ = make_run(tmp_path, random_trials(2, 32, ("val_top1",)))
    fails_cleanly(
        "resume",
        run_dir,
        "--no-live",
        expect=f"error: {run_dir} holds no Tune experiment state to resume from",
    )


def test_a_changed_spec_is_refused_and_forced_is_recorded(tmp_path: Path) -> None:
    """Told before any Ray starts; with --force the check passes and the new hash is kept."""
    run_dir, _ = make_run(tmp_path, random_trials(2, 33, ("val_top1",)), num_trials=4)
    resolved = run_dir / SPEC_RESOLVED
    resolved.write_text(resolved.read_text().replace("num_trials: 4", "num_trials: 5"))
    fails_cleanly(
        "resume",
        run_dir,
        "--no-live",
        expect=f"error: the spec of {run_dir} changed since the search started: {SPEC_RESOLVED}",
    )
    recorded = read_manifest(run_dir).spec_hash
    fails_cleanly(  # past the check: what stops it now is the missing Tune state
        "resume",
        run_dir,
        "--no-live",
        "--force",
        expect=f"error: {run_dir} holds no Tune experiment state to resume from",
    )
    assert read_manifest(run_dir).spec_hash not in (None, recorded)


def test_a_missing_study_is_an_error_not_a_fresh_study(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 34, ("val_top1",)))
    (run_dir / "tuner.pkl").write_bytes(b"")
    (run_dir / STUDY_FILE).unlink()
    fails_cleanly(
        "resume",
        run_dir,
        "--no-live",
        expect=f"error: {run_dir} has no Optuna study ({STUDY_FILE}); did the search start?",
    )
    assert not (run_dir / STUDY_FILE).exists()
