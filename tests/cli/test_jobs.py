"""`rsearch jobs`: the user errors, each one message and exit 2, before any job is listed.

Listing the jobs of a real cluster needs a Ray head; that success case is the slow
tests/cluster/test_remote.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port, forget_this_machines_ray


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def test_unreachable_address_fails_fast() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    fails_cleanly("jobs", "--address", url, expect=f"cannot reach the Ray dashboard at {url}")
    assert time.monotonic() - start < 30  # a hang would mean the probe is not first


def test_missing_address_names_the_flag() -> None:
    fails_cleanly("jobs", expect="no cluster address: pass --address http://HEAD:8265")


def test_missing_token_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    missing = tmp_path / "nope.token"
    fails_cleanly(
        "jobs",
        "--address",
        url,
        "--token-file",
        missing,
        expect=f"token file {missing} (from --token-file) does not exist",
    )


def test_token_and_token_file_together(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    url = f"http://127.0.0.1:{closed_port()}"
    args = ["jobs", "--address", url, "--token", "x", "--token-file", str(token)]
    fails_cleanly(*args, expect="give --token or --token-file, not both")
