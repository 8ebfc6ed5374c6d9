"""Storage full mid-search: one clear line, nothing recorded lost, and `rsearch resume` finishes.

The run's storage root is a small tmpfs mounted for the test (root in this container and in
CI; skipped where mounting is not permitted). Once the first trial has reported, a filler file
takes every byte left, so the next write of the search (a checkpoint, Tune's state, the
MLflow outbox, the study's journal) meets a full disk. The MLflow store stays on the normal
disk: it is the tracking server, not the search's storage.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from rsearch.rundir import TRACKING_STATE_DIR, open_run
from rsearch.tracking.records import Unreadable
from tests.reliability.figures import record
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.mlflow_checks import search_runs

pytestmark = pytest.mark.slow

TRIALS = 2
DISK_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_MB mounted for the test, unmounted after it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def keep_full(filler: Path, until: threading.Event) -> None:
    """Take every byte left on the disk, and whatever the search frees (an old checkpoint it
    deletes), until told to stop: the disk stays full, as when something else fills it."""
    with open(filler, "wb", buffering=0) as f:
        while not until.is_set():
            for size in (2**20, 2**12):
                try:
                    f.write(b"\0" * size)
                    break
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
            else:
                time.sleep(0.05)


def first_result(root: Path, proc: subprocess.Popen[str], timeout: float) -> Path:
    """The run directory, once a trial of it has reported an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = [p for p in root.glob("tiny-*/*/result.json") if p.stat().st_size]
        if results:
            return results[0].parents[1]
        assert proc.poll() is None, "the search ended before its first result"
        time.sleep(0.2)
    raise AssertionError(f"no trial reported within {timeout:g} s")


def test_a_full_disk_stops_the_search_resumably_and_resume_finishes_it(
    tmp_path: Path, small_disk: Path
) -> None:
    spec = write_spec(tmp_path, trials=TRIALS, concurrent=1, scheduler="{type: none}", epochs=2)
    text = spec.read_text().replace(str(tmp_path / "runs"), str(small_disk))
    spec.write_text(text.replace("fraction: 0.5", "fraction: 0.2"))  # shorter epochs
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rsearch = [sys.executable, "-m", "rsearch.cli"]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*rsearch, "run", str(spec), "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    filler = small_disk / "filler"
    stop_filling = threading.Event()
    filling = threading.Thread(target=keep_full, args=(filler, stop_filling), daemon=True)
    try:
        run_dir = first_result(small_disk, proc, timeout=300)
        filling.start()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        stop_filling.set()
        if filling.is_alive():
            filling.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (tmp_path / "run.err").write_text(stderr)
    filled_mb = filler.stat().st_size / 2**20
    stopped_s = time.monotonic() - started

    # One line says what happened and what to do; no traceback.
    assert proc.returncode == 2, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: the disk at {small_disk} is full: the search stopped, and what it recorded "
        f"is kept; free space there, then run `rsearch resume {run_dir}`"
    ], stderr[-3000:]
    # rsearch's own output has no traceback (Ray's worker logs, `(Name pid=...)` lines that
    # --no-live forwards, may show the workers' own).
    assert not [ln for ln in stderr.splitlines() if ln.startswith("Traceback")], stderr[-3000:]

    # Nothing recorded is lost: the run's records read whole, every queued MLflow record too.
    run = open_run(run_dir)
    assert run.spec.search.num_trials == TRIALS
    queued = list((run_dir / TRACKING_STATE_DIR).glob("queue-*.jsonl"))
    for queue in queued:
        assert queue.read_bytes().endswith(b"\n")
    from rsearch.tracking.outbox import Outbox

    for queue in queued:
        pending = Outbox(queue.parent, queue.stem, max_bytes=2**30).pending()
        assert not [p for p in pending if isinstance(p, Unreadable)]
    before = load_study(run_dir, run.spec).trials
    finished_before = sum(t.state.is_finished() for t in before)

    filler.unlink()  # space is back
    resumed_at = time.monotonic()
    done = subprocess.run(
        [*rsearch, "resume", str(run_dir), "--no-live"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    resume_s = time.monotonic() - resumed_at
    assert done.returncode == 0, done.stderr[-3000:]
    after = load_study(run_dir, run.spec).trials
    assert len(after) == TRIALS
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in after), after
    parent, children = search_runs(run_dir)
    assert parent.info.status == "FINISHED"
    numbers = Counter(c.data.tags.get("rsearch.optuna_trial") for c in children)
    assert numbers == Counter({str(t.number): 1 for t in after}), numbers
    assert all(c.info.status == "FINISHED" for c in children)

    record(
        "storage full mid-search + resume",
        f"{DISK_MB} MB tmpfs filled after the first result; freed; rsearch resume",
        1,
        "nothing",
        trials=TRIALS,
        finished_before_resume=finished_before,
        filled_mb=round(filled_mb, 1),
        stopped_s=round(stopped_s, 1),
        resume_s=round(resume_s, 1),
    )
