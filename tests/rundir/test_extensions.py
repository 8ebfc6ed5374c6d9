"""The extension records of a run directory: appended, read back, followed by open_run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.errors import UserError
from rsearch.rundir import (
    EXTENSIONS,
    append_extension,
    new_extension,
    open_run,
    read_extensions,
)
from rsearch.spec import extended_spec
from tests.report.rundirs import make_run, random_trials


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir, _ = make_run(tmp_path, random_trials(3, 5, ("val_top1",)))
    return run_dir


def _extend(run_dir: Path, trials: int, *sets: str) -> None:
    run = open_run(run_dir)
    spec = extended_spec(run.spec, sets, trials, "resolved.yaml")
    append_extension(run_dir, new_extension(run.extensions, spec, trials, sets))


def test_a_run_never_extended_has_one_experiment(run_dir: Path) -> None:
    run = open_run(run_dir)
    assert run.extensions == () and read_extensions(run_dir) == ()
    assert run.tune_paths == [str(run_dir)] and run.current_tune_path == str(run_dir)
    assert run.experiment_dirs == [run_dir]


def test_the_latest_extension_is_the_search_from_then_on(run_dir: Path) -> None:
    _extend(run_dir, 2, "space.optim.lr.high=0.1")
    _extend(run_dir, 4, "search.max_concurrent=1")
    run = open_run(run_dir)
    first, second = run.extensions
    assert (first.number, first.trials, first.num_trials, first.experiment) == (1, 2, 5, "extend-1")
    assert (second.number, second.num_trials, second.overrides) == (
        2,
        9,
        ["search.max_concurrent=1"],
    )
    # The second extension started from the first one's spec: the narrowed range stays.
    assert run.spec.search.num_trials == 9 and run.spec.space["optim.lr"].high == 0.1
    assert run.spec.search.max_concurrent == 1
    assert run.experiment_dirs == [run_dir, run_dir / "extend-1", run_dir / "extend-2"]
    assert run.current_tune_path == str(run_dir / "extend-2")
    assert second.spec_hash != first.spec_hash


def test_a_line_cut_short_is_skipped_and_the_next_one_stays_whole(run_dir: Path) -> None:
    _extend(run_dir, 2)
    path = run_dir / EXTENSIONS
    with path.open("a") as f:
        f.write('{"number": 2, "tri')  # a crash while the second record was appended
    assert [e.number for e in read_extensions(run_dir)] == [1]
    _extend(run_dir, 3)  # the retried extension gets the number the lost one had
    assert [(e.number, e.num_trials) for e in read_extensions(run_dir)] == [(1, 5), (2, 8)]


def test_a_damaged_record_is_a_clear_error(run_dir: Path) -> None:
    (run_dir / EXTENSIONS).write_text('{"number": 1, "trials": "many"}\n')
    with pytest.raises(UserError, match=r"extensions.jsonl is damaged: line 1: trials: "):
        open_run(run_dir)
