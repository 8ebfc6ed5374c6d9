"""A search's terminal: rsearch's table and summary, not Ray's start-up chatter or Tune's banner."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsearch.tune.quiet import (
    TOKEN_AUTH_LOGGER,
    TOKEN_AUTH_NOTICE,
    TUNE_OUTPUT_VARIABLE,
    DropMessage,
    drop_once,
    quiet_ray,
    skip_pattern,
)
from tests.tune.conftest import write_spec

ROOT = Path(__file__).resolve().parents[2]

# What the raylet sends the driver when a node runs more workers than it has CPUs (Ray 2.60).
WORKER_POOL_LINE = (
    "WARNING: 8 PYTHON worker processes have been started on node: 899a5d with address: "
    "192.0.2.2, which is 4x the maximum expected startup concurrency (2). This could be a "
    "result of using a large number of actors, tasks blocked in ray.get() calls, or tasks with "
    "fractional CPU requests (e.g., num_cpus=0.1) allowing high concurrency."
)
OTHER_RAYLET_LINE = "Task was killed due to the node running low on memory."

# Each appeared in `make quickstart`'s output before: Tune's settings box and TensorBoard hint,
# Ray's start-up INFO lines, the raylet's worker-pool warning and the token-auth notice.
NOISE = [
    "Configuration for experiment",
    "View detailed results here",
    "To visualize your results with TensorBoard",
    "PYTHON worker processes",
    "Token authentication is enabled",
    "Generated new authentication token",
    "Started a local Ray instance",
    "Wrote the latest version of all result files",
]


def _raylet_batch(line: str) -> dict[str, Any]:
    return {"lines": [line], "pid": "raylet", "is_err": False, "ip": "192.0.2.2"}


def _printed(batches: list[dict[str, Any]]) -> list[str]:
    return [line for batch in batches for line in batch["lines"]]


def test_skip_pattern_alone_extended_and_applied_once() -> None:
    ours = skip_pattern(None)
    assert re.search(ours, WORKER_POOL_LINE)
    assert not re.search(ours, OTHER_RAYLET_LINE)
    assert skip_pattern("") == ours
    assert skip_pattern(ours) == ours

    both = skip_pattern("^DEBUG")
    assert re.search(both, "DEBUG: a user's own noise")
    assert re.search(both, WORKER_POOL_LINE)
    assert not re.search(both, OTHER_RAYLET_LINE)
    assert skip_pattern(both) == both


def test_rays_deduplicator_drops_the_worker_pool_warning_only() -> None:
    from ray._private.ray_logging import LogDeduplicator

    dedup = LogDeduplicator(5, None, skip_pattern(None))
    assert _printed(dedup.deduplicate(_raylet_batch(WORKER_POOL_LINE))) == []
    assert _printed(dedup.deduplicate(_raylet_batch(OTHER_RAYLET_LINE))) == [OTHER_RAYLET_LINE]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def auth_logger() -> Iterator[tuple[logging.Logger, _Records]]:
    """Ray's token-auth logger with a recording handler; its filters as they were after."""
    logger = logging.getLogger(TOKEN_AUTH_LOGGER)
    filters = list(logger.filters)
    # An earlier connect() in this process added the filter under test.
    logger.filters[:] = [f for f in filters if not isinstance(f, DropMessage)]
    records = _Records()
    logger.addHandler(records)
    yield logger, records
    logger.removeHandler(records)
    logger.filters[:] = filters


def test_token_auth_notice_dropped_and_its_disabled_warning_kept(
    auth_logger: tuple[logging.Logger, _Records],
) -> None:
    from ray._private.authentication import authentication_token_setup as auth

    logger, records = auth_logger
    auth._warn_token_auth_enabled()
    assert records.messages[-1].startswith(TOKEN_AUTH_NOTICE)  # Ray's text is what we match

    drop_once(logger, TOKEN_AUTH_NOTICE)
    drop_once(logger, TOKEN_AUTH_NOTICE)
    assert sum(isinstance(f, DropMessage) for f in logger.filters) == 1
    records.messages.clear()
    auth._warn_token_auth_enabled()
    auth._warn_token_auth_disabled()
    assert len(records.messages) == 1
    assert records.messages[0].startswith("Token authentication is disabled")


def test_quiet_ray_selects_tunes_silent_reporter_and_the_drivers_skip(
    monkeypatch: pytest.MonkeyPatch, auth_logger: tuple[logging.Logger, _Records]
) -> None:
    from ray._private import worker
    from ray.tune.experimental.output import AirVerbosity, get_air_verbosity

    monkeypatch.delenv(TUNE_OUTPUT_VARIABLE, raising=False)
    monkeypatch.setattr(worker.stdout_deduplicator, "skip_re", None)
    assert get_air_verbosity(0) == AirVerbosity.SILENT  # the reporter that prints the box
    quiet_ray()
    assert os.environ[TUNE_OUTPUT_VARIABLE] == "0"
    assert get_air_verbosity(0) is None  # Tune's other reporter: silent at verbose=0
    assert _printed(worker.stdout_deduplicator.deduplicate(_raylet_batch(WORKER_POOL_LINE))) == []

    monkeypatch.setenv(TUNE_OUTPUT_VARIABLE, "1")
    quiet_ray()
    assert os.environ[TUNE_OUTPUT_VARIABLE] == "1"  # the user's choice stands


@pytest.mark.slow
def test_search_prints_no_ray_noise(tmp_path: Path) -> None:
    path = write_spec(tmp_path, trials=4, concurrent=2, epochs=2)
    env = {k: v for k, v in os.environ.items() if k not in {TUNE_OUTPUT_VARIABLE, "RAY_AUTH_MODE"}}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "rsearch.cli", "run", str(path)]
        + ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "rsearch · tiny" in done.stderr  # the live table
    assert "run directory: " in done.stdout
    assert [n for n in NOISE if n in out] == [], out
