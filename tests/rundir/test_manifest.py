"""The run directory's manifest and creation: typed, written once and atomically, unique."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from rsearch import __version__
from rsearch.errors import UserError
from rsearch.rundir import (
    MANIFEST,
    create_run_dir,
    layout,
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
    assert all(p.is_dir() and RUN_NAME.fullmatch(p.name) for p in made)


RUN_NAME = re.compile(r"same-\d{8}-\d{6}-[0-9a-f]{6}")


def test_run_directories_of_separate_roots_differ_too(tmp_path: Path) -> None:
    """Two jobs submitted at once have control directories of their own, one storage URI."""
    names = {create_run_dir(tmp_path / f"job{i}", "same").name for i in range(20)}
    assert len(names) == 20 and all(RUN_NAME.fullmatch(n) for n in names)


def test_a_name_taken_at_the_storage_uri_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])  # the second search draws the first's
    monkeypatch.setattr(layout.secrets, "token_hex", lambda n: next(suffixes))
    monkeypatch.setattr(layout.time, "strftime", lambda fmt: "20260101-000000")  # same second
    remote = tmp_path / "bucket"
    remote.mkdir()
    taken_there = lambda name: (remote / name).exists()  # noqa: E731
    first = create_run_dir(tmp_path / "a", "same", taken=taken_there)
    (remote / first.name).mkdir()  # the first search's experiment, at the URI
    second = create_run_dir(tmp_path / "b", "same", taken=taken_there)
    assert first.name.endswith("-aaaaaa") and second.name == first.name.replace("aaaaaa", "bbbbbb")
    assert list((tmp_path / "b").iterdir()) == [second]  # the refused name left nothing behind
