"""One driver per run directory: the lock refuses a second, and dies with its holder.

A real second process holds the lock where it matters (flock locks belong to open files, so
a second `open` in this process conflicts too, and that is tested in-process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsearch.rundir import LOCK_FILE, RunDirBusy, driver_lock, open_run
from tests.cli.helpers import invoke
from tests.report.rundirs import make_run, random_trials

HOLD = """
import sys, time
from pathlib import Path
from rsearch.rundir import driver_lock
with driver_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_in_another_process(run_dir: Path) -> subprocess.Popen[str]:
    """A process that holds run_dir's driver lock until it is killed."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_driver_is_refused_naming_the_directory_and_the_holder(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 1, ("val_top1",)))
    holder = hold_in_another_process(run_dir)
    try:
        with pytest.raises(RunDirBusy) as refused:
            with driver_lock(run_dir):
                pytest.fail("a second driver got the lock")
        message = str(refused.value)
        assert str(run_dir) in message and f"pid {holder.pid} on " in message
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 2, ("val_top1",)))
    holder = hold_in_another_process(run_dir)
    os.kill(holder.pid, signal.SIGKILL)  # no finally, no atexit: only the kernel releases it
    holder.wait()
    with driver_lock(run_dir):
        assert f'"pid": {os.getpid()}' in (run_dir / LOCK_FILE).read_text()


def test_the_lock_is_released_when_the_driver_ends(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 3, ("val_top1",)))
    with driver_lock(run_dir):
        with pytest.raises(RunDirBusy):  # another open file of this process is refused too
            with driver_lock(run_dir):
                pass
    with driver_lock(run_dir):  # and taken again once the first let go
        pass


def test_readers_work_while_a_driver_holds_the_lock(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(4, 4, ("val_top1",)))
    holder = hold_in_another_process(run_dir)
    try:
        assert open_run(run_dir).manifest.name
        res = invoke("best", run_dir, "--format", "json")
        assert res.exit_code == 0, res.output
        started = time.monotonic()
        report = invoke("report", run_dir, "--no-mlflow")
        assert report.exit_code == 0, report.output
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()


def test_resume_and_extend_refuse_a_directory_another_driver_holds(tmp_path: Path) -> None:
    """Before anything else: no Ray, no spec check, no file of the run touched."""
    run_dir, _ = make_run(tmp_path, random_trials(2, 5, ("val_top1",)))
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    holder = hold_in_another_process(run_dir)
    try:
        for verb in (["resume", run_dir, "--no-live"], ["extend", run_dir, "--trials", "1"]):
            res = invoke(*verb)
            assert res.exit_code == 2, res.output
            assert f"{run_dir} is driven by another rsearch (pid {holder.pid} on " in res.stderr
            assert "Traceback" not in res.output + res.stderr
    finally:
        holder.kill()
        holder.wait()
    after = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    assert {k: v for k, v in after.items() if k != LOCK_FILE} == before
