"""A resumed search runs the spec it started with: a changed spec is refused unless forced."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from rsearch.errors import UserError
from rsearch.rundir import (
    EXTENSIONS,
    MANIFEST,
    SPEC_AS_WRITTEN,
    SPEC_RESOLVED,
    append_extension,
    check_run_spec,
    file_hash,
    new_extension,
    open_run,
    read_manifest,
    write_atomic,
)
from rsearch.spec import SpecError, extended_spec
from tests.report.rundirs import make_run, random_trials


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir, _ = make_run(tmp_path, random_trials(3, 7, ("val_top1",)), num_trials=6)
    return run_dir


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_an_unchanged_spec_passes(run_dir: Path) -> None:
    assert check_run_spec(run_dir) == open_run(run_dir)


def test_a_changed_resolved_spec_is_refused_naming_the_file(run_dir: Path) -> None:
    _edit(run_dir / SPEC_RESOLVED, "num_trials: 6", "num_trials: 9")
    with pytest.raises(UserError, match=rf"changed since the search started: {SPEC_RESOLVED} "):
        check_run_spec(run_dir)
    assert "--force" in str(pytest.raises(UserError, check_run_spec, run_dir).value)


def test_forced_it_warns_and_the_manifest_records_the_new_hash(
    run_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = read_manifest(run_dir).spec_hash
    _edit(run_dir / SPEC_RESOLVED, "num_trials: 6", "num_trials: 9")
    with caplog.at_level(logging.WARNING, logger="rsearch.rundir.spec_check"):
        run = check_run_spec(run_dir, force=True)
    assert f"{SPEC_RESOLVED} (recorded {recorded}, now {run.manifest.spec_hash})" in caplog.text
    assert read_manifest(run_dir).spec_hash == run.manifest.spec_hash != recorded
    check_run_spec(run_dir)  # accepted from then on without --force


def test_an_invalid_resolved_spec_is_told_at_its_line(run_dir: Path) -> None:
    _edit(run_dir / SPEC_RESOLVED, "num_trials: 6", "num_trials: -1")
    line = next(
        i
        for i, text in enumerate((run_dir / SPEC_RESOLVED).read_text().splitlines(), 1)
        if "num_trials: -1" in text
    )
    with pytest.raises(SpecError, match=rf"{re.escape(SPEC_RESOLVED)}:{line}:\d+: search"):
        check_run_spec(run_dir, force=True)


def test_the_name_never_changes_even_forced(run_dir: Path) -> None:
    _edit(run_dir / SPEC_RESOLVED, "name: report-demo", "name: other")
    with pytest.raises(UserError, match="'other', but the search and its Optuna study are"):
        check_run_spec(run_dir, force=True)
    assert read_manifest(run_dir).name == "report-demo"


def test_a_changed_spec_file_as_written_is_refused(run_dir: Path) -> None:
    (run_dir / SPEC_AS_WRITTEN).write_text((run_dir / SPEC_RESOLVED).read_text())
    manifest = read_manifest(run_dir).model_copy(
        update={"spec_file_hash": file_hash(run_dir / SPEC_AS_WRITTEN)}
    )
    write_atomic(run_dir / MANIFEST, manifest.model_dump_json())
    check_run_spec(run_dir)
    _edit(run_dir / SPEC_AS_WRITTEN, "epochs: 3", "epochs: 5")
    with pytest.raises(UserError, match=rf"started: {SPEC_AS_WRITTEN} \(recorded "):
        check_run_spec(run_dir)
    run = check_run_spec(run_dir, force=True)
    assert read_manifest(run_dir).spec_file_hash == run.manifest.spec_file_hash
    assert run.manifest.spec_file_hash == file_hash(run_dir / SPEC_AS_WRITTEN)


def test_an_extended_search_checks_its_latest_extension(run_dir: Path) -> None:
    run = open_run(run_dir)
    spec = extended_spec(run.spec, ["space.optim.lr.high=0.1"], 2, "resolved.yaml")
    append_extension(run_dir, new_extension(run.extensions, spec, 2, []))
    check_run_spec(run_dir)
    _edit(run_dir / EXTENSIONS, '"high":0.1', '"high":0.2')
    with pytest.raises(UserError, match=rf"started: {EXTENSIONS} extension 1 \(recorded "):
        check_run_spec(run_dir)
    forced = check_run_spec(run_dir, force=True)
    again = open_run(run_dir)
    assert again.extensions == forced.extensions and again.spec.space["optim.lr"].high == 0.2
    check_run_spec(run_dir)


def test_an_extension_may_not_rename_the_search_either(run_dir: Path) -> None:
    run = open_run(run_dir)
    spec = extended_spec(run.spec, [], 2, "resolved.yaml")
    append_extension(run_dir, new_extension(run.extensions, spec, 2, []))
    _edit(run_dir / EXTENSIONS, '"name":"report-demo"', '"name":"other"')
    with pytest.raises(UserError, match=rf"{EXTENSIONS}: name is 'other', but the search"):
        check_run_spec(run_dir, force=True)
