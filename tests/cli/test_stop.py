"""`rsearch stop JOB`: the user errors, each one message and exit 2, before any job is touched.

Stopping a real job needs a Ray head; that success case is the slow tests/cluster/test_remote.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.address_checks import (
    missing_address_names_the_flag,
    missing_token_file,
    unreachable_address_fails_fast,
)
from tests.cluster.helpers import forget_this_machines_ray


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def test_unreachable_address_fails_fast() -> None:
    unreachable_address_fails_fast("stop", "j1")


def test_missing_address_names_the_flag() -> None:
    missing_address_names_the_flag("stop", "j1")


def test_missing_token_file(tmp_path: Path) -> None:
    missing_token_file(tmp_path, "stop", "j1")
