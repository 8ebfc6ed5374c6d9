"""`rsearch jobs`: the user errors, each one message and exit 2, before any job is listed.

Listing the jobs of a real cluster needs a Ray head; that success case is the slow
tests/cluster/test_remote.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.address_checks import (
    missing_address_names_the_flag,
    missing_token_file,
    unreachable_address_fails_fast,
)
from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port, forget_this_machines_ray


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def test_unreachable_address_fails_fast() -> None:
    unreachable_address_fails_fast("jobs")


def test_missing_address_names_the_flag() -> None:
    missing_address_names_the_flag("jobs")


def test_missing_token_file(tmp_path: Path) -> None:
    missing_token_file(tmp_path, "jobs")


def test_token_and_token_file_together(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    url = f"http://127.0.0.1:{closed_port()}"
    args = ["jobs", "--address", url, "--token", "x", "--token-file", str(token)]
    fails_cleanly(*args, expect="give --token or --token-file, not both")
