"""`rsearch run SPEC`: its user errors, each one message and exit 2 before Ray starts.

A mistake in the spec, a `--set` or the storage is named with its place (file:line, `--set`,
`--storage`) and nothing is written; an address nobody answers at fails in seconds. A real
search through this verb (embedded Ray, training, report) is the slow
tests/report/test_report_search.py::test_run_writes_and_logs_the_report; no second one here.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port, forget_this_machines_ray, write_layered_spec


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")


def _spec(tmp_path: Path) -> Path:
    """A valid spec whose run directories would go to tmp_path/runs."""
    return write_layered_spec(tmp_path, storage=str(tmp_path / "runs"))


def test_spec_problems_all_at_once_with_their_places(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    text = spec.read_text().replace("num_trials: 2", "num_trials: 0")
    spec.write_text(text.replace("base:\n", "base:\n  epochz: 3\n"))
    stderr = fails_cleanly(
        "run", spec, expect=f"error: {spec}:3:10: search.num_trials: Input should be", lines=2
    )
    assert f"{spec}:5:3: base.epochz: unknown key 'epochz' (did you mean 'epochs'?)" in stderr
    assert not (tmp_path / "runs").exists()


def test_missing_spec_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    fails_cleanly("run", missing, expect=f"error: {missing}:1:1: <top level>: file not found")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("search.num_trials", "--set expects path=value, got 'search.num_trials'"),
        ("search.num_trails=3", "--set:1:1: search.num_trails: unknown key 'num_trails'"),
        ("search.num_trials=zero", "--set:1:1: search.num_trials: Input should be a valid int"),
    ],
    ids=["no value", "unknown key", "wrong type"],
)
def test_bad_set(tmp_path: Path, override: str, fragment: str) -> None:
    spec = _spec(tmp_path)
    fails_cleanly("run", spec, "--set", override, expect=fragment)
    assert not (tmp_path / "runs").exists()


def test_remote_cluster_refuses_local_storage_from_the_spec(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="/data/runs")
    # Refused before any connection is tried, so the unroutable address is never dialled.
    fails_cleanly(
        "run",
        spec,
        "--address",
        "10.255.255.1:6379",
        expect=f"{spec}:9:1: storage = '/data/runs' is a local path",
    )


def test_remote_cluster_refuses_local_storage_from_the_flag(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    fails_cleanly(
        "run",
        spec,
        "--storage",
        "/data/runs",
        "--address",
        "10.255.255.1:6379",
        expect="error: --storage: storage = '/data/runs' is a local path",
    )


def test_unreachable_address_fails_fast(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    address = f"127.0.0.1:{closed_port()}"
    start = time.monotonic()
    fails_cleanly(
        "run",
        spec,
        "--address",
        address,
        "--no-live",
        expect=f"cannot reach the Ray cluster at {address}",
    )
    assert time.monotonic() - start < 30  # a probe, not Ray's own minute of retries
    assert not (tmp_path / "runs").exists()
