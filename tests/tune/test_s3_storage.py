"""A search whose storage is an S3 bucket (a local moto server): Tune and Train write there.

moto's server speaks the S3 protocol over HTTP on 127.0.0.1, so everything above it is real:
pyarrow's S3 filesystem, Ray Tune's experiment sync, Ray Train's checkpoint uploads, the
trial drivers' checkpoint pointers and `Tuner.restore` from the URI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import optuna
import pytest
import ray
import ray.train
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.settings import uri_join
from rsearch.spec import load_spec
from rsearch.tune.driver import resume_search, run_search
from rsearch.tune.storage import fs_path
from tests.moto_server import moto_bucket
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec

runner = CliRunner()
BUCKET = "rsearch-test"
RECORDS = ["spec.yaml", "resolved.yaml", "rsearch.json", "optuna.journal"]


@pytest.fixture
def s3_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A storage URI on a fresh bucket of a moto S3 server, and a filesystem to inspect it.

    Credentials come from the environment, as on a real cluster; Ray's processes started after
    this (the test's embedded Ray) inherit them.
    """
    yield from moto_bucket(monkeypatch, tmp_path, bucket=BUCKET, prefix="runs")


def _files(fs: Any, root: str) -> list[str]:
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    return sorted(
        str(Path(i.path).relative_to(root)) for i in infos if i.type == pyarrow.fs.FileType.File
    )


@pytest.mark.slow
def test_search_on_s3_storage(s3_storage: tuple[str, Any], ray_2cpu: None, tmp_path: Path) -> None:
    storage, fs = s3_storage
    path = write_spec(tmp_path, trials=2, concurrent=2, scheduler="{type: none}", epochs=2)
    spec = load_spec(path, flags={"--storage": storage})
    info = run_search(spec, path, local_dir=str(tmp_path / "local"), live=False)

    # The local control directory: records, study, MLflow outbox, Tune's per-trial results
    run_dir = info.run_dir
    assert run_dir.parent == tmp_path / "local"
    assert info.experiment == uri_join(storage, run_dir.name)
    assert json.loads((run_dir / "rsearch.json").read_text())["experiment"] == info.experiment
    assert info.errors == []
    study = load_study(run_dir, spec)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert len(list(run_dir.glob("*/result.json"))) == 2
    assert (run_dir / "mlflow").is_dir()
    assert not (run_dir / "train").exists() and not list(run_dir.glob("*/checkpoint_*"))

    # The bucket: Tune's experiment state, trial results and pointer checkpoints, the Train
    # checkpoints, and the record files
    root = fs_path(info.experiment)
    files = _files(fs, root)
    assert "tuner.pkl" in files and any(f.startswith("experiment_state") for f in files)
    assert set(RECORDS) <= set(files)
    train_ckpts = [f for f in files if f.startswith("train/") and f.endswith("checkpoint.pt")]
    assert len(train_ckpts) >= 2  # each trial's last two epochs are kept
    pointers = [f for f in files if f.endswith("train_checkpoint.json")]
    assert len(pointers) == 4  # one per trial and epoch
    assert sum(p.split("/")[1] == "checkpoint_000001" for p in pointers) == 2
    for pointer in pointers:
        with fs.open_input_stream(f"{root}/{pointer}") as src:
            target = json.loads(src.read())["path"]
        # the pointer reaches this server again: its query carries the endpoint
        assert target.startswith(f"s3://{root}/train/")
        assert urlparse(target).query == urlparse(storage).query
        if pointer.split("/")[1] == "checkpoint_000001":  # the last epoch's, still kept
            # what a restored trial's workers do with it (rsearch.tune.trainable.worker_loop)
            with ray.train.Checkpoint(target).as_directory() as local:
                assert (Path(local) / "checkpoint.pt").stat().st_size > 0

    res = runner.invoke(app, ["best", str(run_dir), "--format", "json"])
    assert res.exit_code == 0, res.output
    best = json.loads(res.output)
    assert best[0]["values"] == [max(t.values[0] for t in study.trials)]

    # From the storage alone: its record files make a run directory `rsearch best` reads
    copy = tmp_path / "from-bucket"
    copy.mkdir()
    for name in RECORDS:
        with fs.open_input_stream(f"{root}/{name}") as src:
            (copy / name).write_bytes(src.read())
    res = runner.invoke(app, ["best", str(copy), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == best

    # Resume restores Tune from the bucket (the control directory holds no Tune state):
    # the finished search stays finished.
    assert not (run_dir / "tuner.pkl").exists()
    again = resume_search(run_dir, live=False)
    assert again.num_trials == 2 and again.errors == []
    assert len(load_study(run_dir, spec).trials) == 2


def test_missing_bucket_fails_before_ray_starts(
    s3_storage: tuple[str, Any], tmp_path: Path
) -> None:
    storage, _ = s3_storage
    missing = storage.replace(f"s3://{BUCKET}/", "s3://no-such-bucket/")
    path = write_spec(tmp_path, trials=1, concurrent=1, scheduler="{type: none}", epochs=1)
    args = ["run", str(path), "--no-live", "--storage", missing, "--local-dir", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "cannot write to the search's storage s3://no-such-bucket/runs" in res.output
    assert "Bucket 'no-such-bucket' not found" in res.output
    assert not ray.is_initialized()
    assert list(tmp_path.glob("tiny-*")) == []  # no run directory left behind

    res = runner.invoke(app, [*args[:3], "--storage", "nosuchfs://x/y"])
    assert res.exit_code == 2, res.output
    assert "cannot write to the search's storage nosuchfs://x/y" in res.output
