"""A credential in a URI is never sent to a cluster: submit and `run --address` refuse it.

The refusal names where the URI was set and never repeats the secret; nothing is staged or
sent before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.cluster.submit import SubmitOptions, prepare_submission
from rsearch.errors import UserError
from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import forget_this_machines_ray, write_layered_spec

SECRET = "s3cr3tPW"


@pytest.fixture(autouse=True)
def _no_ray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forget_this_machines_ray(monkeypatch, tmp_path / "home")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _refused(spec: Path, tmp_path: Path, options: SubmitOptions, env: dict[str, str]) -> str:
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(UserError) as caught:
        prepare_submission(spec, staging, options, env)
    message = str(caught.value)
    assert SECRET not in message
    assert "MLFLOW_TRACKING_USERNAME" in message and "instance role" in message
    assert list(staging.iterdir()) == []  # nothing staged
    return message


def test_storage_with_a_password_in_the_spec(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage=f"s3://AKID:{SECRET}@bucket/runs")
    options = SubmitOptions(tracking_uri="http://mlflow:5000")
    message = _refused(spec, tmp_path, options, {})
    assert message.startswith(f"{spec}:9:1: storage = 's3://AKID:***@bucket/runs' carries")


def test_tracking_uri_with_a_password_from_the_flag(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    options = SubmitOptions(tracking_uri=f"http://me:{SECRET}@mlflow:5000")
    message = _refused(spec, tmp_path, options, {})
    assert message.startswith("--tracking-uri: tracking.uri = 'http://me:***@mlflow:5000'")


def test_tracking_uri_with_a_query_secret_from_the_environment(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    env = {"MLFLOW_TRACKING_URI": f"https://mlflow.example/?token={SECRET}"}
    message = _refused(spec, tmp_path, SubmitOptions(), env)
    assert message.startswith("$MLFLOW_TRACKING_URI = 'https://mlflow.example/?token=***'")


def test_a_credential_in_a_set_override(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    options = SubmitOptions(
        tracking_uri="http://mlflow:5000", overrides=[f"base.data.path=s3://k:{SECRET}@b/d"]
    )
    assert "base.data.path" in _refused(spec, tmp_path, options, {})


def test_a_uri_without_credentials_is_submitted(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="s3://bucket/runs?region=eu-west-1")
    staging = tmp_path / "staging"
    staging.mkdir()
    options = SubmitOptions(tracking_uri="http://me@mlflow:5000")  # a user name is no secret
    job = prepare_submission(spec, staging, options, {})
    assert "--tracking-uri http://me@mlflow:5000" in job.entrypoint


def test_submit_from_the_command_line(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    stderr = fails_cleanly(
        "submit",
        spec,
        "--address",
        "http://10.255.255.1:8265",
        "--tracking-uri",
        f"http://me:{SECRET}@mlflow:5000",
        expect="error: --tracking-uri: tracking.uri = 'http://me:***@mlflow:5000' carries",
    )
    assert SECRET not in stderr


@pytest.mark.parametrize(
    ("flag", "value", "expect"),
    [
        (
            "--storage",
            f"gs://bucket/runs?sig={SECRET}",
            "--storage: storage = 'gs://bucket/runs?sig=***'",
        ),
        ("--tracking-uri", f"http://me:{SECRET}@mlflow:5000", "--tracking-uri: tracking.uri"),
    ],
)
def test_run_on_a_remote_cluster(tmp_path: Path, flag: str, value: str, expect: str) -> None:
    spec = write_layered_spec(tmp_path)
    # Refused before any connection is tried, so the unroutable address is never dialled.
    stderr = fails_cleanly(
        "run", spec, flag, value, "--address", "10.255.255.1:6379", expect=f"error: {expect}"
    )
    assert SECRET not in stderr and "carries a credential" in stderr
