"""Secrets never reach MLflow, the on-disk queue, or the files logged as artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder, is_secret_name, redact, redact_text
from rsearch.tracking.redact import MASK, redact_yaml_text
from rsearch.tracking.spec_params import resolved_spec, search_settings
from tests.tracking.conftest import make_trial
from tests.tracking.helpers import read_search

SECRETS = ("tok-1234", "pw-5678", "hunter2", "rayPass9", "s3cr3t", "AKIA-ID", "qtok99")


@pytest.mark.parametrize(
    "name",
    [
        "api_token",
        "GITHUB_TOKEN",
        "client_secret",
        "password",
        "DB_PASSWD",
        "api-key",
        "apiKey",
        "aws_access_key_id",
        "private_key",
        "credentials",
        "MLFLOW_TRACKING_AUTH",
        "tracking.auth.user",
    ],
)
def test_names_that_look_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["lr", "optim.weight_decay", "model.name", "keep_last", "epochs"])
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_masks_values_at_any_depth_and_passwords_in_uris() -> None:
    data = {
        "lr": 0.1,
        "db": {"password": "pw-5678", "host": "db.local"},
        "auth": {"user": "me", "pass": "x"},
        "uris": ["postgresql://alice:hunter2@db/x", "https://h/p?token=qtok99&page=2"],
        "env": "API_TOKEN=tok-1234 HOME=/root",
    }
    assert redact(data) == {
        "lr": 0.1,
        "db": {"password": MASK, "host": "db.local"},
        "auth": MASK,
        "uris": [f"postgresql://alice:{MASK}@db/x", f"https://h/p?token={MASK}&page=2"],
        "env": f"API_TOKEN={MASK} HOME=/root",
    }
    assert redact_text("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert redact_text("ray://admin:rayPass9@head:10001") == f"ray://admin:{MASK}@head:10001"


def test_a_spec_without_secrets_is_logged_verbatim_one_with_secrets_masked() -> None:
    clean = "# comment kept\nname: x  # and this\n"
    assert redact_yaml_text(clean) == clean
    masked = redact_yaml_text("# c\ntracking:\n  uri: http://u:s3cr3t@h\n  api_key: AKIA-ID\n")
    assert "s3cr3t" not in masked and "AKIA-ID" not in masked
    assert "http://u:***@h" in masked


def test_no_secret_reaches_mlflow_or_the_disk(
    store: str, experiment: str, spec: SearchSpec, run_dir: Path, tmp_path: Path
) -> None:
    spec_file = tmp_path / "secret-spec.yaml"
    spec_file.write_text(
        "name: track-demo\n"
        "objective: {metric: val_top1}\n"
        "tracking: {uri: 'http://me:hunter2@mlflow.local'}\n"
        "# api_token: tok-1234\n"
    )
    settings = {
        **search_settings(spec),
        "api_token": "tok-1234",
        "db": {"password": "pw-5678"},
        "mirror": "postgresql://alice:hunter2@db/x",
    }
    rec = SearchRecorder(store, experiment, run_dir / "mlflow", flush_interval=0.0)
    rec.start_search(
        run_dir,
        spec.name,
        settings,
        {**resolved_spec(spec), "env": {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}},
        spec_written=spec_file,
        ray_address="ray://admin:rayPass9@head:10001",
        tags={"deploy_credential": "AKIA-ID"},
    )
    t = make_trial(spec, "t", 0.1, 0.0, 1)
    recipe = {**t.recipe, "data": {**t.recipe["data"], "path": "s3://k:s3cr3t@bucket/data"}}
    rec.trial_started("t", recipe, {**t.searched, "hub_token": "qtok99"})
    rec.trial_result("t", t.epochs[0], step=1)
    rec.trial_ended("t", "FAILED", {}, error="403 for https://x:pw-5678@hub/model?token=qtok99")
    assert rec.end_search()

    s = read_search(store, experiment)
    logged: list[str] = []
    for run in [s.parent, *s.children.values()]:
        logged += [f"{k}={v}" for k, v in {**run.data.params, **run.data.tags}.items()]
        files = s.all_artifacts(run, tmp_path / "dl" / run.info.run_id)
        logged += [f.read_text() for f in files]
    assert {"spec/resolved.yaml", "spec/secret-spec.yaml"} <= s.artifact_names(s.parent, "spec")
    logged += [p.read_text() for p in (run_dir / "mlflow").rglob("*") if p.is_file()]
    text = "\n".join(logged)
    for secret in SECRETS:
        assert secret not in text, secret
    # What was masked is still visible as masked, so the record shows the setting existed.
    assert s.parent.data.params["api_token"] == MASK
    assert s.parent.data.tags["rsearch.ray_address"] == f"ray://admin:{MASK}@head:10001"
    assert s.children["t"].data.params["data.path"] == f"s3://k:{MASK}@bucket/data"
