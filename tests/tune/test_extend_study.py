"""An extension's searcher on the search's own study, without a Ray cluster.

The search's searcher is told Tune's events by hand, as in tests/rundir/test_contract.py; the
extension's searcher is then built as `rsearch extend` builds it. Whether its sampler saw the
old trials is checked deterministically: its first proposal is what the same sampler proposes
over a copy of exactly those trials, and not what it proposes over none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from rsearch.errors import UserError
from rsearch.rundir import Run, create_run_dir, open_run, open_study
from rsearch.settings import resolve_storage
from rsearch.spec import extended_spec, parse_spec_text
from rsearch.tune.driver import write_run_files
from rsearch.tune.extend import refuse_unfinished
from rsearch.tune.optuna_searcher import OPTUNA_TRIAL, PARAMS, OptunaSearcher
from rsearch.tune.searchers import make_sampler
from rsearch.tune.space import propose

SPEC = """
name: ext
objective: {metric: val_top1, mode: max}
search: {algorithm: ALGORITHM, num_trials: 3, seed: 3}
base:
  model: {name: test_resnet}
  data: {dataset: digits, image_size: 16}
  epochs: 1
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
  loss.label_smoothing: {type: float, low: 0.0, high: 0.2}
"""


def _finished_run(tmp_path: Path, algorithm: str = "tpe") -> Run:
    """A search whose three trials completed, each told to Optuna as Tune would."""
    spec = parse_spec_text(SPEC.replace("ALGORITHM", algorithm))
    run_dir = create_run_dir(tmp_path / "runs", spec.name)
    write_run_files(run_dir, spec, None, None, False, resolve_storage(str(tmp_path / "runs")), None)
    searcher = OptunaSearcher(spec, run_dir / "optuna.journal", spec.budget_epochs)
    for i, trial_id in enumerate(("a", "b", "c")):
        assert searcher.suggest(trial_id) is not None
        searcher.on_trial_complete(trial_id, {"epoch": 1, "val_top1": 50.0 + 10 * i})
    return open_run(run_dir)


def _extension_searcher(run: Run, trials: int, *sets: str) -> OptunaSearcher:
    spec = extended_spec(run.spec, sets, trials, "resolved.yaml")
    return OptunaSearcher(spec, run.study_file, spec.budget_epochs, trials=trials, extension=1)


def _config(searcher: OptunaSearcher, trial_id: str) -> dict[str, Any]:
    config = searcher.suggest(trial_id)
    assert isinstance(config, dict), config
    return config


def _first_proposal(run: Run, history: list[optuna.trial.FrozenTrial], *sets: str) -> Any:
    """What extension 1's sampler proposes first in a study holding only `history`."""
    spec = extended_spec(run.spec, sets, 1, "resolved.yaml")
    study = optuna.create_study(sampler=make_sampler(spec, extension=1), direction="maximize")
    study.add_trials(history)
    return propose(study, spec)[1]


def test_extension_continues_the_study_and_its_sampler_sees_the_old_trials(
    tmp_path: Path,
) -> None:
    run = _finished_run(tmp_path)
    old = open_study(run.study_file, run.spec.name).get_trials()
    narrowed = "space.optim.lr.high=0.1"
    searcher = _extension_searcher(run, 4, narrowed)
    configs = [_config(searcher, t) for t in ("x1", "x2", "x3", "x4")]
    assert searcher.suggest("x5") == "FINISHED"  # exactly the trials it adds
    assert [c[OPTUNA_TRIAL] for c in configs] == [3, 4, 5, 6]
    assert all(0.001 <= c[PARAMS]["optim.lr"] <= 0.1 for c in configs)

    trials = open_study(run.study_file, run.spec.name).trials
    assert [t.user_attrs["tune_trial_id"] for t in trials] == [
        "a",
        "b",
        "c",
        "x1",
        "x2",
        "x3",
        "x4",
    ]
    first = configs[0][PARAMS]
    assert first == _first_proposal(run, old, narrowed)
    assert first != _first_proposal(run, [], narrowed)


def test_a_random_extension_does_not_repeat_the_first_trials(tmp_path: Path) -> None:
    run = _finished_run(tmp_path, "random")
    first_run = [t.params for t in open_study(run.study_file, run.spec.name).trials]
    searcher = _extension_searcher(run, 3)
    drawn = [_config(searcher, t)[PARAMS] for t in ("x1", "x2", "x3")]
    assert not any(d in first_run for d in drawn)


def test_an_unfinished_search_is_refused_with_resume(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    refuse_unfinished(run)  # three of three finished
    spec = extended_spec(run.spec, (), 1, "resolved.yaml")
    with pytest.raises(UserError, match=r"has not finished \(3 of 4 trials started\): if it"):
        refuse_unfinished(Run(run.path, run.manifest, spec))  # the fourth never started
    searcher = OptunaSearcher(spec, run.study_file, spec.budget_epochs, trials=1, extension=1)
    searcher.suggest("x1")  # its driver died with the trial running
    with pytest.raises(UserError) as caught:
        refuse_unfinished(Run(run.path, run.manifest, spec))
    assert str(caught.value) == (
        f"{run.path} has not finished (4 of 4 trials started; trial(s) 3 not finished): if it "
        f"still runs, wait for it; if it was interrupted, finish it with `rsearch resume "
        f"{run.path}` and extend it then"
    )
