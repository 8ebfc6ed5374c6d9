"""A second driver on a running search is refused and changes nothing; once it ends, one may.

A real search (embedded Ray, digits) runs in a subprocess. Once its driver holds the run
directory's lock and a trial reports, `rsearch resume` and `rsearch extend` are run on the
same directory: both must answer exit 2 naming the directory and the holder. The first driver
is stopped (SIGSTOP) while they run, so any change to Tune's state, the MLflow outbox or the
run's records in that window can only be theirs. Once the first search ends, its lock is
free: the next driver takes it (the resume that follows is the one test_driver_kill runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsearch.rundir import (
    COMPUTE_FILE,
    EXTENSIONS,
    LOCK_FILE,
    MANIFEST,
    SPEC_RESOLVED,
    SPEED_FILE,
    STUDY_FILE,
    TRACKING_STATE_DIR,
    driver_lock,
)
from tests.cli.helpers import invoke
from tests.reliability.figures import record
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow

TUNE_STATE = ("experiment_state", "tuner.pkl", "searcher-state", "basic-variant-state")
"""Tune's experiment state files, by prefix: what a second driver's restore would rewrite."""
RECORDS = (MANIFEST, SPEC_RESOLVED, EXTENSIONS, STUDY_FILE, COMPUTE_FILE, LOCK_FILE)


def snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of Tune's state, rsearch's records and the MLflow outbox."""
    files = [
        p
        for p in run_dir.iterdir()
        if p.is_file() and (p.name in RECORDS or p.name.startswith(TUNE_STATE))
    ]
    files += [p for p in (run_dir / TRACKING_STATE_DIR).rglob("*") if p.is_file()]
    # The trials' own workers keep running while the driver is stopped: their speed cache
    # may appear meanwhile.
    names = sorted(p.name for p in run_dir.iterdir() if p.name != SPEED_FILE)
    listing = {f"listing:{n}": (0, 0) for n in names}
    return listing | {
        str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files
    }


def wait_for_driver(proc: subprocess.Popen[bytes], runs: Path, log: Path) -> Path:
    """The run directory, once the driver holds its lock and a trial has reported."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        for run_dir in runs.glob("tiny-*"):
            lock = run_dir / LOCK_FILE
            held = lock.is_file() and f'"pid": {proc.pid},' in lock.read_text()
            if held and any(p.stat().st_size for p in run_dir.glob("*/result.json")):
                return run_dir
        time.sleep(0.5)
    raise AssertionError(f"no trial reported in time:\n{log.read_text()[-3000:]}")


def test_a_second_driver_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    started = time.monotonic()
    path = write_spec(tmp_path, trials=2, concurrent=1, scheduler="{type: none}", epochs=2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rsearch = [sys.executable, "-m", "rsearch.cli"]
    log = tmp_path / "first.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*rsearch, "run", str(path), "--no-live"],
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
        )
    try:
        run_dir = wait_for_driver(proc, tmp_path / "runs", log)
        os.kill(proc.pid, signal.SIGSTOP)  # only the refused drivers could change files now
        try:
            before = snapshot(run_dir)
            refusals = []
            for verb in (["resume", run_dir, "--no-live"], ["extend", run_dir, "--trials", "1"]):
                asked = time.monotonic()
                res = invoke(*verb)
                refusals.append(time.monotonic() - asked)
                assert res.exit_code == 2, res.output
                assert f"{run_dir} is driven by another rsearch (pid {proc.pid} on " in res.stderr
                assert "Traceback" not in res.output + res.stderr
            assert snapshot(run_dir) == before
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    searched = time.monotonic() - started

    with driver_lock(run_dir):  # the first driver's exit released it: a next one may drive
        pass
    record(
        "second driver (resume, extend) on a running search",
        "rsearch resume and rsearch extend while the first driver held the run directory",
        2,
        "nothing (Tune state, outbox and records unchanged; refused with exit 2)",
        refusal_s=round(max(refusals), 2),
        search_s=round(searched, 1),
    )
