"""One driver per run directory: an exclusive OS lock held for the driver's whole life.

`rsearch run`, `resume` and `extend` each drive a search: they restore and rewrite Tune's
experiment state, append to the Optuna study and drain the MLflow outbox. Two of them on one
run directory would run the same trials twice and undo each other's records, so each holds
`driver.lock` in the run directory with `fcntl.flock` while it drives. The kernel releases the
lock when the process ends, however it ends: a driver killed with SIGKILL leaves no stale lock
behind, and nothing ever has to be deleted by hand. The file keeps the holder's pid, host and
start time, for the message a second driver gets. Readers (`best`, `report`, `ui`) never take
the lock.

What it covers: every driver that shares the run directory's local side. With a URI storage
(s3://, gs://) that is the local control directory (`--local-dir`), so two drivers on one
machine are refused. Two machines that each have a control directory of the same name over one
storage prefix do not share a lock: object stores have no lock to take, and nothing here stops
them. Nor does `flock` lock reliably across NFS clients on every server.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from rsearch.errors import UserError

LOCK_FILE = "driver.lock"
"""The run directory's driver lock (an `flock`ed file holding the holder's pid/host/start)."""


class RunDirBusy(UserError):
    """Another driver holds the run directory's lock."""


@contextmanager
def driver_lock(run_dir: Path) -> Iterator[None]:
    """Hold run_dir's driver lock for the body of the `with`; refuse when another holds it.

    Nothing else ever takes the lock, not even briefly to look: a reader holding it for a
    moment would make a driver starting then refuse.

    Args:
        run_dir: The run directory, already checked to be one (`open_run`), or just created.

    Raises:
        RunDirBusy: Naming run_dir and the holder (pid, host, since when), when another
            process drives it.
    """
    path = run_dir / LOCK_FILE
    # O_CLOEXEC (Python's default): processes the driver starts (Ray's) do not inherit the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(
                f"{run_dir} is driven by another rsearch ({_holder(path)}); wait for it to end "
                "or stop it first (`rsearch best`/`report` may read it meanwhile)"
            ) from None
        _write_holder(fd)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, a later holder rewrites it


def _write_holder(fd: int) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)


def _holder(path: Path) -> str:
    # The holder writes its record just after taking the lock: it may not be there yet.
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {record['pid']} on {record['host']} since {record['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"
