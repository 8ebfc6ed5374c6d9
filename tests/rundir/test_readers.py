"""`rsearch best` and `rsearch report` read a run directory alone: no Ray, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.rundir import MANIFEST, read_manifest
from rsearch.tracking import SearchRecorder
from tests.report.rundirs import make_run, random_trials

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

NO_RAY = """
import sys
from typer.testing import CliRunner
from rsearch.cli import app
res = CliRunner().invoke(app, sys.argv[1:])
assert res.exit_code == 0, res.output
heavy = sorted(m for m in ("ray", "torch", "timm") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "verb", [["best"], ["best", "--format", "json"], ["report", "--no-mlflow", "--format", "md"]]
)
def test_best_and_report_import_no_ray(tmp_path: Path, verb: list[str]) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(4, 3, ("val_top1",)))
    args = [verb[0], str(run_dir), *verb[1:]]
    proc = subprocess.run(
        [sys.executable, "-c", NO_RAY, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY:\n" in proc.stdout, proc.stdout  # neither ray, torch nor timm was imported


def _tracked_run(tmp_path: Path) -> tuple[Path, str]:
    """A run directory whose manifest names its store, and the parent run made there."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    run_dir, spec = make_run(tmp_path, random_trials(3, 4, ("val_top1",)))
    manifest = read_manifest(run_dir).model_copy(update={"tracking_uri": uri})
    (run_dir / MANIFEST).write_text(manifest.model_dump_json())
    recorder = SearchRecorder(uri, spec.name, tmp_path / "outbox")
    recorder.start_search(run_dir, spec.name, {}, spec.model_dump(mode="json"))
    assert recorder.flush()
    return run_dir, uri


def test_report_finds_the_store_from_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, uri = _tracked_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a directory with no mlflow.db, and no store in the env
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "logged to MLflow run" in res.stdout
    assert not (elsewhere / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=uri)
    parent = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`rsearch.role` = 'search'",
    )[0]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/report.html" in logged


def test_best_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(3, 5, ("val_top1",)))
    monkeypatch.chdir(tmp_path.parent)
    relative = os.path.relpath(run_dir)
    res = runner.invoke(app, ["best", relative, "--format", "yaml"])
    assert res.exit_code == 0, res.output
    assert "trial:" in res.stdout
