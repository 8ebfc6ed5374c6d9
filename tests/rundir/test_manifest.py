"""The run directory's manifest and creation: typed, written once and atomically, unique."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rsearch import __version__
from rsearch.errors import UserError
from rsearch.rundir import (
    MANIFEST,
    create_run_dir,
    new_manifest,
    open_run,
    read_manifest,
    spec_hash,
    write_manifest,
)
from tests.report.rundirs import make_run, random_trials


def test_manifest_round_trips_and_is_written_once(tmp_path: Path) -> None:
    manifest = new_manifest(
        name="demo",
        spec_hash=spec_hash({"name": "demo"}),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        storage_root=str(tmp_path),
    )
    write_manifest(tmp_path, manifest)
    again = read_manifest(tmp_path)
    assert again == manifest
    assert again.rsearch_version == __version__ and again.created is not None
    assert again.created.tzinfo is not None
    with pytest.raises(FileExistsError):
        write_manifest(tmp_path, manifest)
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed, not left behind


def test_a_manifest_of_the_first_format_still_reads(tmp_path: Path) -> None:
    old = {
        "name": "quickstart",
        "spec_path": "search_spaces/quickstart.yaml",
        "ray_address": "embedded",
        "tracking_uri": None,
        "tracked": True,
        "experiment": None,
        "created": "2026-11-20T10:01:02+0000",
    }
    (tmp_path / MANIFEST).write_text(json.dumps(old))
    manifest = read_manifest(tmp_path)
    assert manifest.name == "quickstart" and manifest.spec_hash is None
    assert manifest.created is not None and manifest.created.year == 2026


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "is damaged"),
        ('{"name": 3}', "name: Input should be a valid string"),
        ("[]", "is damaged"),
    ],
)
def test_a_damaged_manifest_is_a_user_error(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(UserError, match=fragment):
        read_manifest(tmp_path)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not an rsearch run directory"):
        open_run(tmp_path)


def test_open_run_reads_spec_and_manifest_once(tmp_path: Path) -> None:
    run_dir, spec = make_run(tmp_path, random_trials(2, 1, ("val_top1",)))
    run = open_run(run_dir)
    assert run.spec == spec and run.manifest.name == spec.name
    assert run.study_file == run_dir / "optuna.journal" and run.tune_path == str(run_dir)
    assert run.manifest.spec_hash == spec_hash(spec.model_dump(mode="json"))


def test_spec_hash_follows_the_content_not_the_key_order() -> None:
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert spec_hash({"a": 1}) != spec_hash({"a": 2})


def test_run_directories_started_in_the_same_second_never_collide(tmp_path: Path) -> None:
    made: list[Path] = []
    lock = threading.Lock()

    def start() -> None:
        path = create_run_dir(tmp_path, "same")
        with lock:
            made.append(path)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and len(set(made)) == 8
    assert all(p.is_dir() and p.name.startswith("same-") for p in made)
