"""Storage locations: URI joins that keep the query, checkpoint pointers, record sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsearch.settings import is_uri, local_path, uri_join, with_fs_path
from rsearch.tune.persisted import checkpoint_uri
from rsearch.tune.storage import download_trial_results, exists, fs_path, upload_files

MINIO = "s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http&region=us-east-1"


@pytest.mark.parametrize(
    ("storage", "remote"),
    [
        ("s3://bucket/runs", True),
        ("gs://bucket", True),
        (MINIO, True),
        ("file:///tmp/runs", False),
        ("local:///tmp/runs", False),
        ("/tmp/runs", False),
        ("./rsearch-runs", False),
        ("~/runs", False),
    ],
)
def test_is_uri(storage: str, remote: bool) -> None:
    assert is_uri(storage) is remote


def test_uri_join_keeps_the_query_and_local_paths_stay_paths() -> None:
    assert uri_join(MINIO, "tiny-1", "train") == (
        "s3://bucket/runs/tiny-1/train?endpoint_override=127.0.0.1:9000&scheme=http"
        "&region=us-east-1"
    )
    assert uri_join("gs://bucket", "x") == "gs://bucket/x"
    assert uri_join("/tmp/runs", "tiny-1", "train") == "/tmp/runs/tiny-1/train"


def test_fs_path_and_back() -> None:
    assert fs_path(MINIO) == "bucket/runs"
    assert with_fs_path(MINIO, "bucket/other/ckpt") == (
        "s3://bucket/other/ckpt?endpoint_override=127.0.0.1:9000&scheme=http&region=us-east-1"
    )


def test_local_path_accepts_file_uris(tmp_path: Path) -> None:
    assert local_path(f"file://{tmp_path}/runs") == tmp_path / "runs"
    assert local_path(str(tmp_path / "a" / ".." / "runs")) == tmp_path / "runs"


def test_checkpoint_pointer_keeps_the_storage_endpoint() -> None:
    """A pointer to a checkpoint on an S3-compatible server must reach that server again."""
    import pyarrow.fs
    import ray.train

    s3 = pyarrow.fs.S3FileSystem(
        endpoint_override="127.0.0.1:9000", scheme="http", region="us-east-1"
    )
    ckpt = ray.train.Checkpoint("bucket/runs/tiny-1/train/trial-a/checkpoint_0", filesystem=s3)
    uri = checkpoint_uri(ckpt, uri_join(MINIO, "tiny-1", "train"))
    assert uri == with_fs_path(MINIO, "bucket/runs/tiny-1/train/trial-a/checkpoint_0")
    # What the next trial driver does with the pointer: the same server, the same path.
    reopened = ray.train.Checkpoint(uri)
    assert reopened.path == ckpt.path
    assert reopened.filesystem.equals(s3)
    default_endpoint = pyarrow.fs.S3FileSystem(scheme="http", region="us-east-1")
    assert not default_endpoint.equals(s3)
    # Without the storage URI the old form stays (a plain scheme and path).
    assert checkpoint_uri(ckpt) == "s3://bucket/runs/tiny-1/train/trial-a/checkpoint_0"


def test_local_checkpoint_pointer_is_a_plain_path(tmp_path: Path) -> None:
    import ray.train

    ckpt = ray.train.Checkpoint(str(tmp_path))
    assert checkpoint_uri(ckpt, str(tmp_path.parent)) == str(tmp_path)


def test_records_go_up_and_trial_results_come_down(tmp_path: Path) -> None:
    storage = tmp_path / "bucket" / "tiny-1"  # a file:// URI: pyarrow's local filesystem
    storage.mkdir(parents=True)
    for rel in [
        "trial_a/result.json",
        "trial_a/params.json",
        "trial_a/checkpoint_000000/p.json",
        "train/trial-a/checkpoint_0/checkpoint.pt",
        "experiment_state-x.json",
    ]:
        (storage / rel).parent.mkdir(parents=True, exist_ok=True)
        (storage / rel).write_text(json.dumps({"rel": rel}))
    run_dir = tmp_path / "local" / "tiny-1"
    run_dir.mkdir(parents=True)
    (run_dir / "rsearch.json").write_text("{}")

    upload_files([run_dir / "rsearch.json"], f"file://{storage}")
    assert (storage / "rsearch.json").read_text() == "{}"

    assert download_trial_results(f"file://{storage}", run_dir) == 2
    assert json.loads((run_dir / "trial_a" / "result.json").read_text()) == {
        "rel": "trial_a/result.json"
    }
    assert (run_dir / "trial_a" / "params.json").is_file()
    # checkpoints, Train runs and Tune's experiment state stay in the storage
    assert not (run_dir / "trial_a" / "checkpoint_000000").exists()
    assert not (run_dir / "train").exists()
    assert not (run_dir / "experiment_state-x.json").exists()


def test_exists_sees_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "run-a").mkdir()
    (tmp_path / "file").write_text("x")
    assert exists(str(tmp_path / "run-a")) and exists(str(tmp_path / "file"))
    assert not exists(str(tmp_path / "run-b"))
