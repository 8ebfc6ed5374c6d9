"""The MLflow store: creating a SQLite store once, where its artifacts go, short HTTP retries.

Which store a search uses is resolved in `rsearch.settings`. Imports no mlflow at module
level; `ensure_store` and `is_transient` import it when called.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from rsearch.errors import UserError
from rsearch.settings import sqlite_path

HTTP_LIMITS: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
"""MLflow's HTTP settings while the recorder talks to a server. MLflow's own defaults (7
retries with exponential backoff, 120 s timeouts) would stall the search for minutes each
time an unreachable server is tried; the recorder queues instead and tries again later."""

PERMANENT_ERRORS = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "BAD_REQUEST",
        "MALFORMED_REQUEST",
        "INVALID_STATE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
    }
)
"""MLflow error codes that sending the same request again cannot fix (a bad value, a run
deleted by hand); every other failure is taken as the store being out of reach for now."""


def artifact_root(uri: str) -> str | None:
    """Where new experiments of a SQLite store keep artifacts: beside the database.

    MLflow's default (`./mlruns` of whichever process creates the experiment) would scatter
    artifacts over the directories searches happen to start in. None for other stores.
    """
    path = sqlite_path(uri)
    return None if path is None else (path.parent / "mlruns").as_uri()


def ensure_store(uri: str) -> None:
    """Create the store now, once, if it is a SQLite file that does not exist yet.

    Several processes creating one SQLite store at the same moment crash in MLflow's schema
    migrations, so creation is serialised with a lock file beside the database.

    Raises:
        UserError: When the database cannot be created or opened.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")), _quiet_migrations():
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    # A path that cannot be made or locked, a file that is no database, a schema MLflow
    # cannot migrate: no usable store, which the user fixes. Anything else is a fault.
    except (OSError, SQLAlchemyError, MlflowException) as exc:
        raise UserError(f"cannot open the MLflow store {uri}: {exc}") from exc


@contextmanager
def _quiet_migrations() -> Iterator[None]:
    """MLflow announces a new store's schema creation at INFO on the console; not worth a line."""
    loggers = [logging.getLogger(n) for n in ("mlflow.store.db.utils", "alembic.runtime.migration")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def http_limits(limits: Mapping[str, str] = HTTP_LIMITS) -> Iterator[None]:
    """Short MLflow HTTP retries and timeouts for the duration of the block.

    MLflow reads these settings from the environment on every request, so they are set for
    the recorder's own calls and restored afterwards. A value the user exported wins.
    """
    added = [name for name in limits if name not in os.environ]
    os.environ.update({name: limits[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed MLflow call may succeed later unchanged (store down, busy, timed out)."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, MlflowException):
        return exc.error_code not in PERMANENT_ERRORS
    # requests' errors subclass OSError; OperationalError is a locked or vanished database.
    return isinstance(exc, OSError | OperationalError)
