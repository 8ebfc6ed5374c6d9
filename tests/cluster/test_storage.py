"""The pure rule: which storage roots and MLflow URIs every node of a cluster can reach."""

from __future__ import annotations

import pytest

from rsearch.cluster.storage import (
    Reach,
    check_cluster_data_path,
    check_cluster_storage,
    check_cluster_tracking,
    storage_reach,
    tracking_reach,
)
from rsearch.errors import UserError


@pytest.mark.parametrize(
    ("storage", "reach"),
    [
        ("s3://bucket/runs", Reach.SHARED),
        ("gs://bucket/runs", Reach.SHARED),
        ("abfss://c@acct.dfs.core.windows.net/runs", Reach.SHARED),
        ("hdfs://namenode:8020/runs", Reach.SHARED),
        ("/mnt/shared/runs", Reach.ABSOLUTE),
        ("~/runs", Reach.ABSOLUTE),
        ("file:///mnt/shared/runs", Reach.ABSOLUTE),
        ("./rsearch-runs", Reach.RELATIVE),
        ("runs", Reach.RELATIVE),
    ],
)
def test_storage_reach(storage: str, reach: Reach) -> None:
    assert storage_reach(storage) is reach


@pytest.mark.parametrize(
    ("uri", "reach"),
    [
        ("http://mlflow:5000", Reach.SHARED),
        ("https://mlflow.example.com", Reach.SHARED),
        ("postgresql+psycopg2://u@db/mlflow", Reach.SHARED),
        ("databricks", Reach.SHARED),
        ("sqlite:////shared/mlflow.db", Reach.ABSOLUTE),
        ("sqlite:///mlflow.db", Reach.RELATIVE),
        ("file:///shared/mlruns", Reach.ABSOLUTE),
        ("file:mlruns", Reach.RELATIVE),
        ("/shared/mlruns", Reach.ABSOLUTE),
        ("mlruns", Reach.RELATIVE),
    ],
)
def test_tracking_reach(uri: str, reach: Reach) -> None:
    assert tracking_reach(uri) is reach


def test_shared_storage_passes_and_absolute_needs_the_flag() -> None:
    check_cluster_storage("s3://b/runs", "storage", allow_local=False)
    check_cluster_storage("/mnt/shared", "storage", allow_local=True)
    with pytest.raises(UserError) as e:
        check_cluster_storage("/mnt/x", "spec.yaml:9:1: storage", allow_local=False)
    message = str(e.value)
    assert message.startswith("spec.yaml:9:1: storage = '/mnt/x' is a local path")
    assert "s3://" in message and "--allow-local-storage" in message


def test_relative_storage_is_refused_even_when_allowed() -> None:
    with pytest.raises(UserError, match="relative local path.*temporary working directory"):
        check_cluster_storage("./rsearch-runs", "storage (the default)", allow_local=True)


def test_tracking_rule() -> None:
    check_cluster_tracking("http://mlflow:5000", "--tracking-uri", allow_local=False)
    check_cluster_tracking("sqlite:////shared/m.db", "--tracking-uri", allow_local=True)
    with pytest.raises(UserError, match=r"--tracking-uri = 'sqlite:////s/m.db' is a file"):
        check_cluster_tracking("sqlite:////s/m.db", "--tracking-uri", allow_local=False)
    with pytest.raises(UserError, match="relative: the job's runs would land"):
        check_cluster_tracking("sqlite:///mlflow.db", "$MLFLOW_TRACKING_URI", allow_local=True)


def test_data_path_must_be_absolute_on_a_cluster() -> None:
    check_cluster_data_path(None, "base.data.path")
    check_cluster_data_path("/datasets/imagenette", "base.data.path")
    with pytest.raises(UserError, match=r"^s.yaml:7:9: base.data.path = 'data/x' is relative"):
        check_cluster_data_path("data/x", "s.yaml:7:9: base.data.path")


def test_object_store_data_path_is_accepted_on_a_cluster() -> None:
    # Shards in a bucket: every node reads the store itself, nothing is relative.
    check_cluster_data_path("s3://bucket/retina-shards", "base.data.path")
    check_cluster_data_path(
        "s3://b/shards?endpoint_override=minio:9000&scheme=http", "s.yaml:7:9: base.data.path"
    )
    check_cluster_data_path("gs://bucket/shards", "base.data.path")
    # file:// is not object storage: still a path, and this one is relative.
    with pytest.raises(UserError, match="is relative"):
        check_cluster_data_path("file://data/x", "base.data.path")
