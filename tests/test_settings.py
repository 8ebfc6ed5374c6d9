"""Settings resolved once: flags applied while the spec loads, one tracking-URI and one
storage resolver, one URI test."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.settings import (
    is_uri,
    resolve_storage,
    resolve_tracking_uri,
    sqlite_path,
    uri_scheme,
)
from rsearch.spec import load_spec
from rsearch.spec.load import field_where

SPEC = """\
name: flags
objective: {metric: val_top1, mode: max}
base:
  model: {name: test_resnet}
  data: {dataset: digits, image_size: 16}
  epochs: 1
storage: ./from-spec
tracking:
  uri: sqlite:///from-spec.db
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_flags_override_the_spec_like_set_and_are_named(spec_file: Path) -> None:
    flags = {"--storage": "s3://bucket/runs?region=x", "--tracking-uri": "http://127.0.0.1:5000"}
    spec = load_spec(spec_file, (), flags)
    assert spec.storage == "s3://bucket/runs?region=x"
    assert spec.tracking.uri == "http://127.0.0.1:5000"
    assert field_where(spec_file, ("storage",), (), flags) == "--storage: storage"
    assert field_where(spec_file, ("storage",)) == f"{spec_file}:7:1: storage"
    # A flag wins over --set, as it is applied last; a None flag changes nothing.
    spec = load_spec(spec_file, ["storage=/via/set"], {"--storage": None})
    assert spec.storage == "/via/set"
    assert field_where(spec_file, ("storage",), ["storage=/via/set"]) == "--set:1:1: storage"


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5001"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_tracking_uri(None, cwd=tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Relative SQLite files are made absolute: every later reader finds the same store.
    assert resolve_tracking_uri("sqlite:///x/m.db", tmp_path) == f"sqlite:///{tmp_path}/x/m.db"
    assert resolve_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert sqlite_path("sqlite:////abs/m.db") == Path("/abs/m.db")
    assert sqlite_path("sqlite://") is None  # an in-memory store has no file
    assert sqlite_path("postgresql://u@h/db") is None


@pytest.mark.parametrize(
    ("text", "uri", "scheme"),
    [
        ("s3://b/p", True, "s3"),
        ("GS://b", True, "gs"),
        ("file:///tmp/x", False, "file"),
        ("local:///tmp/x", False, "local"),
        ("/tmp/x", False, None),
        ("./runs", False, None),
    ],
)
def test_is_uri(text: str, uri: bool, scheme: str | None) -> None:
    assert is_uri(text) is uri and uri_scheme(text) == scheme


def test_storage_root(tmp_path: Path) -> None:
    local = resolve_storage(str(tmp_path / "runs"))
    assert local.local == tmp_path / "runs" and local.remote is None
    remote = resolve_storage("s3://b/runs?region=x", str(tmp_path / "ctl"))
    assert remote.local == tmp_path / "ctl" and remote.remote == "s3://b/runs?region=x"
    assert resolve_storage("file:///srv/runs").local == Path("/srv/runs")
