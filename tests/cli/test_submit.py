"""`rsearch submit SPEC`: the user errors, each named before anything is sent to a cluster.

The spec is checked first, then where its storage and MLflow store are, then the address: a
mistake in the spec never waits on a network. Submitting to a real cluster needs a Ray head;
that success case is the slow tests/cluster/test_remote.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port, forget_this_machines_ray, write_layered_spec

SERVER_STORE = ("--tracking-uri", "http://mlflow:5000")
"""An MLflow store every node can reach, so the storage checks pass."""


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def _url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def test_unreachable_address(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    url = _url()
    fails_cleanly(
        "submit",
        spec,
        "--address",
        url,
        *SERVER_STORE,
        expect=f"cannot reach the Ray dashboard at {url}",
    )


def test_spec_problems_come_before_the_address(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    spec.write_text(spec.read_text().replace("num_trials", "num_trails"))
    (tmp_path / "presets" / "small.yaml").unlink()
    stderr = fails_cleanly(
        "submit", spec, "--address", _url(), expect="extended file not found", lines=2
    )
    assert "search.num_trails: unknown key" in stderr  # every problem at once
    assert "cannot reach" not in stderr


def test_missing_spec_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    fails_cleanly(
        "submit", missing, "--address", _url(), expect=f"{missing}:1:1: <top level>: file not found"
    )


def test_relative_storage_is_refused_with_its_place(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="./runs")
    fails_cleanly(
        "submit",
        spec,
        "--address",
        _url(),
        *SERVER_STORE,
        expect=f"{spec}:9:1: storage = './runs' is a relative local path",
    )


def test_local_tracking_store_is_refused(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    fails_cleanly(
        "submit",
        spec,
        "--address",
        _url(),
        "--tracking-uri",
        store,
        expect=f"--tracking-uri: tracking.uri = '{store}' is a file on one machine",
    )


def test_unknown_package_mode(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    # A click usage error: its usage banner, then one `Error:` line naming the choices.
    stderr = fails_cleanly(
        "submit",
        spec,
        "--address",
        _url(),
        "--package",
        "zip",
        expect="'zip' is not one of 'auto', 'installed', 'ship'",
        lines=4,
    )
    assert stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--package'")


def test_missing_token_file(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    missing = tmp_path / "nope.token"
    fails_cleanly(
        "submit",
        spec,
        "--address",
        _url(),
        *SERVER_STORE,
        "--token-file",
        missing,
        expect=f"token file {missing} (from --token-file) does not exist",
    )
