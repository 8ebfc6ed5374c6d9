"""One-time SQLite store creation, short HTTP settings, error kinds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from rsearch.errors import UserError
from rsearch.tracking.store import (
    HTTP_LIMITS,
    ensure_store,
    http_limits,
    is_transient,
)

REPO = Path(__file__).resolve().parents[2]


CREATE = """
import sys
from rsearch.tracking.store import ensure_store
from mlflow import MlflowClient
ensure_store(sys.argv[1])
MlflowClient(sys.argv[1]).create_experiment(sys.argv[2])
"""


@pytest.mark.slow  # three processes importing mlflow: 10 s on an idle machine, 50 s on a busy one
def test_processes_creating_one_store_at_once_all_succeed(ram_dir: Path) -> None:
    # MLflow's migrations crash when several processes create one SQLite store at once; the
    # lock in ensure_store serialises them.
    uri = f"sqlite:///{ram_dir / 'concurrent' / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE, uri, f"e{i}"], env=env, stderr=subprocess.PIPE
        )
        for i in range(3)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    names = {e.name for e in MlflowClient(uri).search_experiments()}
    assert {"e0", "e1", "e2"} <= names


def test_an_unusable_sqlite_path_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot open the MLflow store"):
        ensure_store(f"sqlite:///{blocker / 'sub' / 'mlflow.db'}")


def test_a_file_that_is_no_database_is_a_user_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are notes, not a database\n" * 10)
    with pytest.raises(UserError, match="cannot open the MLflow store .*not a database"):
        ensure_store(f"sqlite:///{text}")


def test_a_fault_while_opening_the_store_is_not_passed_off_as_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(MlflowClient, "search_experiments", broken)
    with pytest.raises(TypeError, match="a bug"):
        ensure_store(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_short_http_settings_apply_inside_the_block_only_and_yield_to_the_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in HTTP_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    with http_limits():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"


def test_outages_are_transient_and_invalid_values_are_not() -> None:
    assert is_transient(MlflowException("API request to http://h failed with exception ..."))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(MlflowException("bad", error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(TypeError("a bug"))


def test_a_new_store_is_created_without_console_lines(ram_dir: Path) -> None:
    uri = f"sqlite:///{ram_dir / 'quiet' / 'mlflow.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from rsearch.tracking import ensure_store; ensure_store(sys.argv[1])",
            uri,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (ram_dir / "quiet" / "mlflow.db").is_file()
    assert "Creating initial MLflow database tables" not in proc.stderr + proc.stdout
