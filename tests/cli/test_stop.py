"""`rsearch stop JOB`: the user errors, each one message and exit 2, before any job is touched.

Stopping a real job needs a Ray head; that success case is the slow tests/cluster/test_remote.py.
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
    fails_cleanly("stop", "j1", "--address", url, expect=f"cannot reach the Ray dashboard at {url}")
    assert time.monotonic() - start < 30  # a hang would mean the probe is not first


def test_missing_address_names_the_flag() -> None:
    fails_cleanly("stop", "j1", expect="no cluster address: pass --address http://HEAD:8265")


def test_missing_token_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    missing = tmp_path / "nope.token"
    fails_cleanly(
        "stop",
        "j1",
        "--address",
        url,
        "--token-file",
        missing,
        expect=f"token file {missing} (from --token-file) does not exist",
    )
