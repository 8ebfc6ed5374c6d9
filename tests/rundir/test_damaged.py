"""A run record a crash or a full disk damaged is one clear message naming it, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rsearch.errors import UserError
from rsearch.rundir import (
    COMPUTE_FILE,
    EXTENSIONS,
    MANIFEST,
    SPEC_RESOLVED,
    open_run,
    read_compute,
    read_extensions,
)
from tests.cli.helpers import fails_cleanly
from tests.report.rundirs import make_run, random_trials

DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbled": lambda data: b"\xff\xfe\x00" + data[3:],
    "emptied": lambda data: b"",
}


def damage(path: Path, how: str) -> None:
    path.write_bytes(DAMAGE[how](path.read_bytes()))


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", [MANIFEST, SPEC_RESOLVED])
def test_a_damaged_manifest_or_resolved_spec_is_a_user_error_naming_it(
    tmp_path: Path, name: str, how: str
) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 1, ("val_top1",)))
    damage(run_dir / name, how)
    with pytest.raises(UserError, match=f"{run_dir / name} is damaged: "):
        open_run(run_dir)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_compute_record_is_a_user_error_naming_it(tmp_path: Path, how: str) -> None:
    (tmp_path / COMPUTE_FILE).write_bytes(DAMAGE[how](b'{"trials": {}, "stop_reason": null}'))
    with pytest.raises(UserError, match=f"{tmp_path / COMPUTE_FILE} is damaged: "):
        read_compute(tmp_path)


def test_a_garbled_extension_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / EXTENSIONS).write_bytes(b'\xff\xfe{"k": 1\n')
    with caplog.at_level(logging.WARNING):
        assert read_extensions(tmp_path) == ()
    assert "line 1" in caplog.text


def test_best_on_a_truncated_manifest_says_so_in_one_line(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 1, ("val_top1",)))
    damage(run_dir / MANIFEST, "truncated")
    fails_cleanly("best", run_dir, expect=f"{run_dir / MANIFEST} is damaged: ")
