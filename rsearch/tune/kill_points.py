"""A test hook that kills the search driver at a named moment of a trial's start-up.

`RSEARCH_TEST_KILL_AT=<moment>[@<n>]` makes the driver SIGKILL itself the n-th time (default:
the first) it reaches `<moment>`, as a crash or `kill -9` would at exactly that point. The
resume tests (`tests/tune/test_kill_at_start.py`) use it to hit each moment deterministically;
searches never set it, and unset it costs one environment lookup per call.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_AT_ENV = "RSEARCH_TEST_KILL_AT"

MOMENTS = ("asked", "trial_started", "child_opened", "first_result", "first_result_recorded")
"""In order: Optuna handed out a proposal (and the study names its Tune trial); Tune started
the trial, whose child run is not made yet; the child run was made; the trial's first result
reached the driver, not yet recorded; the first result was recorded (queued on disk)."""

_reached: Counter[str] = Counter()


def kill_point(moment: str) -> None:
    """Kill this process if `RSEARCH_TEST_KILL_AT` names this moment and its count is due.

    Raises:
        ValueError: When `moment` is not one of `MOMENTS` (a misspelt call site), or the
            variable names an unknown moment or a count that is not a positive integer.
    """
    if moment not in MOMENTS:
        raise ValueError(f"unknown kill point {moment!r}")
    target = os.environ.get(KILL_AT_ENV)
    if not target:
        return
    name, _, nth = target.partition("@")
    if name not in MOMENTS or not (nth or "1").isdigit() or int(nth or 1) < 1:
        raise ValueError(f"{KILL_AT_ENV}={target!r}: expected <moment>[@<n>], moment in {MOMENTS}")
    if name != moment:
        return
    _reached[moment] += 1
    if _reached[moment] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
