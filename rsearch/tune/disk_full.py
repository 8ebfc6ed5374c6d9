"""A full disk stops a search resumably, with one line saying where and what to do.

Every writer of a search may be the first to meet a full disk: the MLflow outbox and the
Optuna journal (in the driver's callbacks and searcher), Tune's own experiment state and
trial results, the Train checkpoints (in the workers, reaching the driver as a failed trial).
None of them loses what it already wrote (records are appended or replaced atomically), so
the search stops where it is and `rsearch resume` carries on once there is space.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

from rsearch.errors import UserError

_SIGNS = ("No space left on device", f"[Errno {errno.ENOSPC}]")
"""How a full disk reads once Ray has turned a worker's exception into text."""


class StorageFull(UserError):
    """The search stopped because a disk it writes to is full; it can be resumed."""


def full_disk(error: BaseException) -> str | None:
    """The file a full disk refused, or "" when the error says the disk is full without one;
    None when the error is not a full disk.

    Looks through the error's causes, and the text Ray makes of a remote exception.
    """
    for exc in _chain(error):
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
        f"free space there, then run `rsearch resume {run_dir}`"
    )


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
