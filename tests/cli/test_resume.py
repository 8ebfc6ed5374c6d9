"""`rsearch resume RUN_DIR`: its user errors, each one message and exit 2.

Resuming a real interrupted search (its driver killed mid-way, every trial finished after) is
the slow tests/tune/test_resume.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsearch.rundir import MANIFEST
from tests.cli.helpers import ROOT, fails_cleanly
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
    address = f"127.0.0.1:{closed_port()}"
    fails_cleanly(
        "resume",
        run_dir,
        "--address",
        address,
        "--no-live",
        expect=f"cannot reach the Ray cluster at {address}",
    )


@pytest.mark.slow
def test_run_directory_without_tune_state(tmp_path: Path) -> None:
    """Slow only because resume starts the embedded Ray before it looks for Tune's state.

    A process of its own, so the Ray it starts ends with it.
    """
    run_dir, _ = make_run(tmp_path, random_trials(2, 32, ("val_top1",)))
    done = subprocess.run(
        [sys.executable, "-m", "rsearch.cli", "resume", str(run_dir), "--no-live"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # no $RAY_ADDRESS: see the fixture
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {run_dir} holds no Tune experiment state to resume from"
    ]
