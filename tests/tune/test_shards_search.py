"""A real search whose trials train on shards in an S3 bucket (a local moto server).

Both trials run at once on one node: the shards are copied to the node once (under its lock)
and both trials read that copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from rsearch.machine import node_dir
from rsearch.spec import load_spec
from rsearch.train.shards import copy_dir, node_copy, pack, read_index
from rsearch.tune.driver import run_search
from rsearch.tune.storage import fs_path
from tests.moto_server import moto_bucket
from tests.study_helpers import load_study
from tests.train.train_helpers import write_image_folder
from tests.tune.conftest import write_spec


@pytest.fixture
def s3_shards(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A packed 3-class folder uploaded to a fresh bucket: its URI and the filesystem."""
    for uri, fs in moto_bucket(monkeypatch, tmp_path):
        packed = tmp_path / "shards"
        pack(write_image_folder(tmp_path / "folder", per_class=8), packed, shard_size=5)
        for path in packed.iterdir():
            with fs.open_output_stream(f"{fs_path(uri)}/{path.name}") as out:
                out.write(path.read_bytes())
        yield uri, fs


@pytest.mark.slow
def test_search_trains_on_shards_in_a_bucket(
    s3_shards: tuple[str, Any], ray_2cpu: None, tmp_path: Path
) -> None:
    uri, fs = s3_shards
    copy_path = copy_dir(uri, read_index(uri), node_dir() / "shards")
    path = write_spec(tmp_path, trials=2, concurrent=2, scheduler="{type: none}", epochs=1)
    data = f"{{dataset: shards, path: '{uri}', image_size: 16, batch_size: 8}}"
    spec = load_spec(path, overrides=[f"base.data={data}"])
    try:
        info = run_search(spec, path, local_dir=str(tmp_path / "local"), live=False)
        assert info.errors == []
        study = load_study(info.run_dir, spec)
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
        # The node's copy is complete: taking it again reads nothing from the emptied bucket.
        index = read_index(uri)
        fs.delete_dir_contents(fs_path(uri))
        copy = node_copy(uri, index)
        assert copy == str(copy_path) and len(list(copy_path.glob("*.tar"))) == 10
    finally:
        # The copy is in this user's real node directory (the Ray workers' one): remove it.
        shutil.rmtree(copy_path, ignore_errors=True)
        copy_path.with_name(f"{copy_path.name}.lock").unlink(missing_ok=True)
