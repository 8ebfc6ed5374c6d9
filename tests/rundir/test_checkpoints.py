"""The run directory's record of each trial's checkpoint (`checkpoints.json`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rsearch.rundir.checkpoints import read_checkpoints, record_checkpoint
from rsearch.rundir.layout import CHECKPOINTS


def checkpoint(run_dir: Path, trial_id: str) -> Path:
    path = run_dir / "train" / trial_id / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    return path


def test_checkpoints_are_kept_relative_so_a_moved_run_directory_still_finds_them(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    for trial_id in ("a", "b"):
        record_checkpoint(run_dir, trial_id, checkpoint(run_dir, trial_id))
    moved = run_dir.rename(tmp_path / "moved")
    assert read_checkpoints(moved) == {
        "a": moved.resolve() / "train/a/checkpoint.pt",
        "b": moved.resolve() / "train/b/checkpoint.pt",
    }


def test_a_damaged_record_costs_the_uploads_not_the_search(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "run"
    record_checkpoint(run_dir, "a", checkpoint(run_dir, "a"))
    (run_dir / CHECKPOINTS).write_bytes(b'{"a": "train/a/chec')
    with caplog.at_level(logging.WARNING):
        assert read_checkpoints(run_dir) == {}
    assert "damaged" in caplog.text
    # The next trial's record replaces the damaged file with a whole one.
    record_checkpoint(run_dir, "b", checkpoint(run_dir, "b"))
    assert set(read_checkpoints(run_dir)) == {"b"}


def test_an_entry_edited_to_lead_outside_the_run_directory_is_not_given_back(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    record_checkpoint(run_dir, "a", checkpoint(run_dir, "a"))
    (tmp_path / "secret").write_text("key")
    (run_dir / CHECKPOINTS).write_text('{"a": "train/a/checkpoint.pt", "b": "../secret"}')
    assert set(read_checkpoints(run_dir)) == {"a"}
