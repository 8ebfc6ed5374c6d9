"""A run directory never holds a credential, yet its search still reaches its store and storage.

The process that wrote the files keeps the real URIs; any other gets them from the environment
or is told how to give them, and never uses a masked URI as if it were real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch import redact
from rsearch.errors import UserError
from rsearch.rundir import create_run_dir, open_run
from rsearch.settings import resolve_storage, uri_join
from rsearch.spec import load_spec
from rsearch.tracking.reports import run_tracking_uri
from rsearch.tune.driver import write_run_files
from tests.cli.helpers import fails_cleanly

SECRETS = ("trackPW1", "storeKEY2", "rayPW3")
"""The passwords; user names (here an access key's id) say who, and are kept."""
TRACKING = "http://me:trackPW1@mlflow.example:5000"
STORAGE = "s3://AKIDuser:storeKEY2@bucket/runs?endpoint_override=minio:9000&scheme=http"

SPEC = f"""\
name: creds
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: random, num_trials: 2, seed: 1}}
base:
  model: {{name: test_resnet}}
  data: {{dataset: digits, image_size: 16}}
  epochs: 1
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
tracking: {{uri: '{TRACKING}'}}  # a comment
storage: '{STORAGE}'
"""


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(redact, "_real", {})  # this test's own process memory
    path = tmp_path / "creds.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    root = resolve_storage(spec.storage, str(tmp_path / "local"))
    run_dir = create_run_dir(root.local, spec.name)
    assert root.remote is not None
    experiment = uri_join(root.remote, run_dir.name)
    run = write_run_files(
        run_dir, spec, path, "ray://admin:rayPW3@head:10001", True, root, experiment
    )
    # The process that wrote the files still reaches its store and storage through them.
    assert run.tune_path == experiment
    assert run_tracking_uri(run) == TRACKING
    assert run_tracking_uri(open_run(run_dir)) == TRACKING
    return run_dir


def test_no_file_of_the_run_directory_holds_a_credential(run_dir: Path) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"spec.yaml", "resolved.yaml", "rsearch.json"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in text, (path.name, secret)
    assert "http://me:***@mlflow.example:5000" in (run_dir / "rsearch.json").read_text()


def test_another_process_takes_the_storage_credentials_from_the_environment(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redact, "_real", {})
    run = open_run(run_dir)
    # pyarrow takes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a role) for a bare URI.
    assert run.tune_path == (
        f"s3://bucket/runs/{run_dir.name}?endpoint_override=minio:9000&scheme=http"
    )


def test_another_process_is_told_how_to_give_the_tracking_credential(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redact, "_real", {})
    run = open_run(run_dir)
    with pytest.raises(UserError) as caught:
        run_tracking_uri(run)
    message = str(caught.value)
    assert "http://me:***@mlflow.example:5000" in message and "trackPW1" not in message
    assert "$MLFLOW_TRACKING_URI" in message and "MLFLOW_TRACKING_PASSWORD" in message
    # A different URI in the environment is not taken for it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://me:other@elsewhere:5000")
    with pytest.raises(UserError):
        run_tracking_uri(run)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", TRACKING)
    assert run_tracking_uri(run) == TRACKING
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "me")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "trackPW1")
    assert run_tracking_uri(run) == "http://mlflow.example:5000"  # MLflow adds the credential


def test_error_messages_are_redacted_where_the_cli_prints_them(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text(SPEC.replace(f"tracking: {{uri: '{TRACKING}'}}  # a comment\n", ""))
    stderr = fails_cleanly(
        "run",
        path,
        "--storage",
        "nosuchfs://me:storeKEY2@x/y",
        "--local-dir",
        tmp_path / "local",
        expect="cannot write to the search's storage nosuchfs://me:***@x/y",
    )
    assert "storeKEY2" not in stderr


def test_resume_without_the_tracking_credential_fails_before_ray(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setattr(redact, "_real", {})
    stderr = fails_cleanly("resume", run_dir, "--no-live", expect="needs the credential")
    assert "trackPW1" not in stderr and not ray.is_initialized()
