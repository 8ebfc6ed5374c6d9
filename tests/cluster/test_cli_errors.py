"""The cluster verbs' user errors: exit 2 with a message naming the problem, no traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.spec.names import cache_dir
from tests.cluster.helpers import closed_port, write_layered_spec

runner = CliRunner()


def _fails_cleanly(args: list[str], fragment: str) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert fragment in res.stderr, res.stderr
    assert "Traceback" not in res.output + res.stderr
    return str(res.stderr)


@pytest.fixture(autouse=True)
def _no_ray_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Ray address or token from this machine; the timm name cache kept (speed only)."""
    monkeypatch.setenv("RSEARCH_CACHE", str(cache_dir()))
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("verb", [["jobs"], ["status", "j1"], ["logs", "j1"], ["stop", "j1"]])
def test_unreachable_address_fails_fast(verb: list[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    _fails_cleanly([*verb, "--address", url], f"cannot reach the Ray dashboard at {url}")
    assert time.monotonic() - start < 30  # a hang would mean the probe is not first


def test_submit_to_unreachable_address(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}"
    args = ["submit", str(spec), "--address", url, "--tracking-uri", "http://mlflow:5000"]
    _fails_cleanly(args, "cannot reach the Ray dashboard")


def test_spec_problems_come_before_the_address(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    spec.write_text(spec.read_text().replace("num_trials", "num_trails"))
    (tmp_path / "presets" / "small.yaml").unlink()
    url = f"http://127.0.0.1:{closed_port()}"
    stderr = _fails_cleanly(["submit", str(spec), "--address", url], "extended file not found")
    assert "search.num_trails: unknown key" in stderr  # every problem at once
    assert "cannot reach" not in stderr


def test_missing_address_names_the_flag() -> None:
    _fails_cleanly(["jobs"], "pass --address http://HEAD:8265")
    _fails_cleanly(["status", "j1", "--address", "head:8265"], "--address must be the dashboard")


def test_missing_token_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    missing = tmp_path / "nope.token"
    _fails_cleanly(["jobs", "--address", url, "--token-file", str(missing)], "does not exist")


def test_submit_storage_and_package_errors(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="./runs")
    url = f"http://127.0.0.1:{closed_port()}"
    base = ["submit", str(spec), "--address", url, "--tracking-uri", "http://m:5000"]
    _fails_cleanly(base, f"{spec}:9:1: storage = './runs' is a relative local path")
    _fails_cleanly([*base, "--package", "zip"], "'zip' is not one of 'auto', 'installed', 'ship'")


def test_run_on_a_remote_cluster_refuses_local_storage(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="/data/runs")
    # Refused before any connection is tried, so the unroutable address is never dialled.
    args = ["run", str(spec), "--address", "10.255.255.1:6379"]
    _fails_cleanly(args, f"{spec}:9:1: storage = '/data/runs' is a local path")
