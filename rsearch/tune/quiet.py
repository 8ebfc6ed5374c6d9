"""Ray's start-up chatter and Tune's banner, kept off a search's terminal.

rsearch shows its own live table and summary. Ray would add the Tuner's settings in a box, a
TensorBoard hint, INFO lines about its start, a notice that token authentication is on (Ray's
default for a local cluster) and a raylet warning that rsearch's zero-CPU trial drivers always
set off. None asks anything of the user; every other Ray warning and error still shows.
"""

from __future__ import annotations

import logging
import os
import re

TUNE_OUTPUT_VARIABLE = "RAY_AIR_NEW_OUTPUT"
"""Set to 0: Tune's reporter that `RunConfig(verbose=0)` silences whole. The default one still
prints the Tuner's settings and a TensorBoard hint when a search starts."""

RAY_LOG_LEVEL = logging.WARNING
"""Level of the driver's "ray" logger: Ray's INFO lines (its start, where Tune wrote its state)
are not for a search's user."""

WORKER_POOL_WARNING = "worker processes have been started on node"
"""The raylet's warning when a node runs more workers than it has CPUs. A trial's driver asks
for no CPU, so a search always runs more: expected, not a sign of trouble."""

TOKEN_AUTH_NOTICE = "Token authentication is enabled for this Ray cluster"
"""Ray's notice that it turned on token authentication (its default): nothing to act on. Its
warning that a cluster runs without token authentication is not dropped."""

TOKEN_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class DropMessage(logging.Filter):
    """Drops the log records whose message starts with one text."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record goes on to the handlers."""
        return not record.getMessage().startswith(self.prefix)


def quiet_ray() -> None:
    """Keep Ray's and Tune's chatter off this process's terminal; call before ray.init().

    Pass `logging_level=RAY_LOG_LEVEL` to ray.init() as well: it resets the "ray" logger.
    """
    # setdefault: RAY_AIR_NEW_OUTPUT=1 in the environment still brings Tune's banner back.
    os.environ.setdefault(TUNE_OUTPUT_VARIABLE, "0")
    drop_once(logging.getLogger(TOKEN_AUTH_LOGGER), TOKEN_AUTH_NOTICE)
    _skip_worker_pool_warning()


def drop_once(logger: logging.Logger, prefix: str) -> None:
    """Drop logger's records that start with prefix; a second call adds no second filter."""
    if not any(isinstance(f, DropMessage) and f.prefix == prefix for f in logger.filters):
        logger.addFilter(DropMessage(prefix))


def skip_pattern(existing: str | None) -> str:
    """The regex of lines the driver does not print: existing (the user's) and the warning."""
    ours = re.escape(WORKER_POOL_WARNING)
    if not existing or existing == ours:
        return ours
    if existing.endswith(f"|(?:{ours})"):  # applied before, in this process
        return existing
    return f"(?:{existing})|(?:{ours})"


def _skip_worker_pool_warning() -> None:
    from ray._private import worker

    # Raylet warnings reach the driver's stdout through this deduplicator. Its skip regex is
    # $RAY_DEDUP_LOGS_SKIP_REGEX as read when Ray was imported, long before a search connects,
    # so it is extended in place. With RAY_DEDUP_LOGS=0 Ray skips nothing: the warning shows.
    dedup = getattr(worker, "stdout_deduplicator", None)
    if dedup is None or not hasattr(dedup, "skip_re"):
        return  # another Ray's internals: the warning shows, nothing else changes
    current = dedup.skip_re.pattern if dedup.skip_re is not None else None
    dedup.skip_re = re.compile(skip_pattern(current))
