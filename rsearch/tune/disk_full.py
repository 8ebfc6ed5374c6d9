"""A full disk stops a search resumably, with one line saying where and what to do.

Every writer of a search may be the first to meet a full disk: the MLflow outbox and the
Optuna journal (in the driver's callbacks and searcher), Tune's own experiment state and
trial results, the Train checkpoints (in the workers, reaching the driver as a failed trial).
None of them loses what it already wrote (records are appended or replaced atomically), so
the search stops where it is and `rsearch resume` carries on once there is space.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from rsearch.errors import UserError

_SIGNS = ("No space left on device", f"[Errno {errno.ENOSPC}]")
"""How a full disk reads once Ray has turned a worker's exception into text."""


FULL_BELOW = 8 * 2**20
"""Free bytes under which a disk counts as full when a trial fails on it."""


class StorageFull(UserError):
    """The search stopped because a disk it writes to is full; it can be resumed.

    Args:
        message: The one line for the user.
        filename: The file whose write failed ("" when unknown).
    """

    def __init__(self, message: str, filename: str = ""):
        super().__init__(message)
        self.filename = filename


def stop_if_disk_full(run_dir: Path) -> None:
    """Stop the search when run_dir's disk is (nearly) full, as a trial has just failed.

    Called before a failed trial is told to Optuna as FAIL: the failure reaches the driver
    as text, so a trial whose checkpoint could not be written is told apart by the disk it
    failed on. Stopped there, the trial stays unfinished, and `rsearch resume` runs it again
    from its last checkpoint.

    Raises:
        StorageFull: Less than FULL_BELOW bytes are free.
    """
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return
    if free < FULL_BELOW:
        raise storage_full(run_dir, "")


def full_disk(error: BaseException) -> str | None:
    """The file a full disk refused, or "" when the error says the disk is full without one;
    None when the error is not a full disk.

    Looks through the error's causes, and the text Ray makes of a remote exception.
    """
    for exc in _chain(error):
        if isinstance(exc, StorageFull):
            return exc.filename
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return str(exc.filename or "")
    if any(sign in str(exc) for exc in _chain(error) for sign in _SIGNS):
        return ""
    return None


def storage_full(run_dir: Path, filename: str) -> StorageFull:
    """The one-line error of a search stopped by a full disk.

    Args:
        run_dir: The search's run directory.
        filename: The file whose write failed ("" when unknown: the run directory's disk).
    """
    where = _mount_point(Path(filename) if filename else run_dir)
    return StorageFull(
        f"the disk at {where} is full: the search stopped, and what it recorded is kept; "
        f"free space there, then run `rsearch resume {run_dir}`",
        filename,
    )


class _QuietFullDisk(logging.Filter):
    """Drops Tune's traceback of a trial a full disk failed: the search's one line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or full_disk(error) is None


_QUIET = _QuietFullDisk()
TUNE_CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
"""Where Tune logs a failed trial with its traceback."""


def quiet_full_disk_failures() -> None:
    """Keep Tune from printing a traceback for a trial a full disk failed (idempotent)."""
    logging.getLogger(TUNE_CONTROLLER_LOGGER).addFilter(_QUIET)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        # Ray keeps a remote task's exception as `cause` (RayTaskError, TrainingFailedError).
        remote = getattr(exc, "cause", None)
        todo += [exc.__cause__, exc.__context__]
        if isinstance(remote, BaseException):
            todo.append(remote)


def _mount_point(path: Path) -> Path:
    """The mount point holding path: what a user frees space on."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not path.is_mount() and path != path.parent:
        path = path.parent
    return path
