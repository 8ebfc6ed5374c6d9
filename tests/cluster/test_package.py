"""What a submission ships and runs: the spec's extends chain, rsearch, the job's command."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from rsearch.cluster.package import PackageMode, rsearch_dir, spec_files, stage
from rsearch.cluster.submit import SubmitOptions, prepare_submission
from rsearch.errors import UserError
from rsearch.spec import SpecError, load_spec
from tests.cluster.helpers import write_layered_spec


def test_stage_keeps_the_extends_chain_and_its_layout(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path / "src")
    staged = stage(spec, tmp_path / "staging")
    assert staged.spec == "specs/layered.yaml"
    assert sorted(staged.files) == [
        "presets/common/optim.yaml",
        "presets/small.yaml",
        "specs/layered.yaml",
    ]
    shipped = sorted(
        p.relative_to(staged.root).as_posix() for p in staged.root.rglob("*") if p.is_file()
    )
    assert shipped == sorted(staged.files)  # the bystander file stays home
    copy = load_spec(staged.root / staged.spec)
    assert copy == load_spec(spec)
    assert (copy.base.epochs, copy.base.optim.lr) == (3, 0.07)


def test_absolute_extends_is_refused_with_its_place(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    preset = tmp_path / "presets" / "small.yaml"
    spec.write_text(spec.read_text().replace("../presets/small.yaml", str(preset)))
    with pytest.raises(UserError, match=rf"{spec}:5:\d+: extends .* absolute path"):
        spec_files(spec)


def test_missing_extends_fails_before_anything_is_staged(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path / "src")
    (tmp_path / "src" / "presets" / "common" / "optim.yaml").unlink()
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(SpecError, match=r"small.yaml:1:\d+: extends: extended file not found"):
        prepare_submission(spec, staging, SubmitOptions(tracking_uri="http://mlflow:5000"))
    assert not any(staging.iterdir())


def test_submission_command_and_runtime_env(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path / "src")
    options = SubmitOptions(
        overrides=("search.num_trials=3", "base.optim.name=adamw"),
        storage="gs://b/runs",
        package=PackageMode.SHIP,
    )
    env = {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    sub = prepare_submission(spec, tmp_path / "staging", options, env)
    argv = shlex.split(sub.entrypoint)
    assert argv[:5] == ["python", "-m", "rsearch.cli", "run", "specs/layered.yaml"]
    assert argv[5:] == [
        "--no-live",
        "--address",
        "auto",
        "--storage",
        "gs://b/runs",
        "--tracking-uri",
        "http://mlflow:5000",  # the user's $MLFLOW_TRACKING_URI goes along explicitly
        "--set",
        "search.num_trials=3",
        "--set",
        "base.optim.name=adamw",
    ]
    assert sub.runtime_env["working_dir"] == str(tmp_path / "staging")
    assert sub.runtime_env["py_modules"] == [str(rsearch_dir())]
    assert "__pycache__/" in sub.runtime_env["excludes"]
    assert sub.metadata == {"rsearch_spec": "layered"}
    assert sub.submission_id.startswith("rsearch-layered-")
    installed = prepare_submission(
        spec,
        tmp_path / "staging2",
        SubmitOptions(package=PackageMode.INSTALLED, track=False),
        {},
    )
    assert "py_modules" not in installed.runtime_env
    assert installed.entrypoint.endswith("--no-track")


def test_local_storage_refused_with_its_line(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path, storage="/data/runs")
    options = SubmitOptions(tracking_uri="http://mlflow:5000")
    with pytest.raises(UserError, match=rf"^{spec}:9:1: storage = '/data/runs' is a local"):
        prepare_submission(spec, tmp_path / "s1", options, {})
    allowed = SubmitOptions(tracking_uri="http://mlflow:5000", allow_local_storage=True)
    prepare_submission(spec, tmp_path / "s2", allowed, {})


def test_tracking_uri_is_required_and_checked(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    with pytest.raises(UserError, match="no MLflow tracking URI.*--no-track"):
        prepare_submission(spec, tmp_path / "s1", SubmitOptions(), {})
    env = {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    with pytest.raises(UserError, match=r"^\$MLFLOW_TRACKING_URI = 'sqlite:///mlflow.db' is rel"):
        prepare_submission(spec, tmp_path / "s2", SubmitOptions(allow_local_storage=True), env)


def test_relative_data_path_is_refused_with_its_line(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    spec.write_text(
        spec.read_text().replace(
            "data: {dataset: digits, image_size: 16}",
            "data: {dataset: image_folder, path: imgs, image_size: 16}",
        )
    )
    options = SubmitOptions(tracking_uri="http://mlflow:5000")
    with pytest.raises(UserError, match=rf"^{spec}:6:\d+: base.data.path = 'imgs' is relative"):
        prepare_submission(spec, tmp_path / "s", options, {})


def test_default_storage_is_refused_and_said_to_be_unset(tmp_path: Path) -> None:
    spec = write_layered_spec(tmp_path)
    spec.write_text(spec.read_text().replace("storage: s3://bucket/runs\n", ""))
    options = SubmitOptions(tracking_uri="http://mlflow:5000", allow_local_storage=True)
    with pytest.raises(UserError, match=r"^storage \(not set in layered.yaml\) = './rsearch-runs'"):
        prepare_submission(spec, tmp_path / "s", options, {})
