"""Secrets never reach MLflow, the on-disk queue, or the files logged as artifacts.

The masking rules themselves are tested in tests/test_redact.py.
"""

from __future__ import annotations

from pathlib import Path

from rsearch.redact import MASK
from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder
from rsearch.tracking.spec_params import resolved_spec, search_settings
from tests.tracking.conftest import make_trial
from tests.tracking.helpers import read_search

SECRETS = ("tok-1234", "pw-5678", "hunter2", "rayPass9", "s3cr3t", "AKIA-ID", "qtok99")


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
