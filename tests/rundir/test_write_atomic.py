"""write_atomic: the old record or the new one, never half, never a stray temporary file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rsearch.rundir import write_atomic


def test_a_failed_rename_keeps_the_old_record_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rsearch.json"
    write_atomic(path, "old")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["rsearch.json"]


def test_a_record_gets_the_permissions_open_would_give_it(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomic(tmp_path / "spec.yaml", b"name: x\n")
    assert stat.S_IMODE((tmp_path / "spec.yaml").stat().st_mode) == 0o666 & ~umask
