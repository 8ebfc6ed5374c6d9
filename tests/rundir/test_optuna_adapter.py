"""The one adapter over Optuna internals, checked against the installed Optuna.

`rsearch.rundir.study.TrialBook` reaches into `Study._storage` and `Study._study_id`, and
`rsearch.tune.grid` overrides `GridSampler.after_trial`. These tests fail when a supported
Optuna version changes them; pyproject's Optuna range is the range tested here.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from pathlib import Path

import optuna
import pytest
import tomllib
from optuna.samplers import GridSampler

from rsearch.rundir import TrialBook, open_study
from rsearch.tune.grid import AskTellGridSampler

ROOT = Path(__file__).resolve().parents[2]


def _study(tmp_path: Path) -> optuna.Study:
    return open_study(tmp_path / "optuna.journal", "adapter", directions=["maximize"])


def test_trial_book_records_by_trial_number(tmp_path: Path) -> None:
    study = _study(tmp_path)
    first, second = study.ask(), study.ask()
    book = TrialBook(study)
    book.set_user_attr(second.number, "tune_trial_id", "t2")
    book.set_intermediate_value(second.number, 1, 0.5)
    book.set_intermediate_value(second.number, 2, 0.75)
    assert book.state(first.number) == optuna.trial.TrialState.RUNNING
    study.tell(second, 0.75)
    assert book.state(second.number) == optuna.trial.TrialState.COMPLETE

    reread = open_study(tmp_path / "optuna.journal", "adapter")  # another reader of the file
    trial = reread.trials[second.number]
    assert trial.user_attrs == {"tune_trial_id": "t2"}
    assert trial.intermediate_values == {1: 0.5, 2: 0.75}
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        book.set_intermediate_value(second.number, 3, 0.8)


def test_the_internals_the_adapter_uses_exist(tmp_path: Path) -> None:
    study = _study(tmp_path)
    assert isinstance(study._storage, optuna.storages.BaseStorage)
    assert isinstance(study._study_id, int)
    for name in (
        "get_trial_id_from_study_id_trial_number",
        "set_trial_user_attr",
        "set_trial_intermediate_value",
        "get_trial",
    ):
        assert callable(getattr(study._storage, name))


def test_grid_sampler_after_trial_keeps_the_overridden_signature() -> None:
    ours = inspect.signature(AskTellGridSampler.after_trial)
    theirs = inspect.signature(GridSampler.after_trial)
    assert list(ours.parameters) == list(theirs.parameters)
    # The override exists to drop Optuna's study.stop() outside optimize(): still there?
    assert "stop()" in inspect.getsource(GridSampler.after_trial)


def test_pyproject_optuna_range_is_the_tested_one() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if d.startswith("optuna"))
    low, high = re.fullmatch(r"optuna>=([\d.]+),<([\d.]+)", spec).groups()  # type: ignore[union-attr]
    installed = tuple(int(p) for p in metadata.version("optuna").split(".")[:2])
    assert tuple(int(p) for p in low.split(".")[:2]) <= installed
    assert installed < tuple(int(p) for p in high.split(".")[:2])
    # One minor series: a wider range would claim versions no test has run on.
    assert int(high.split(".")[0]) == int(low.split(".")[0])
