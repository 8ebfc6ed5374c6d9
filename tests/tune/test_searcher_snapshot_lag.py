"""A resumed search reruns a trial the study already holds as finished: the searcher copes."""

from __future__ import annotations

from pathlib import Path

import optuna

from rsearch.spec import parse_spec_text
from rsearch.tune.optuna_searcher import OptunaSearcher

SPEC = """
name: s
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 2}
scheduler: {type: none}
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""


def _searcher(tmp_path: Path) -> OptunaSearcher:
    return OptunaSearcher(parse_spec_text(SPEC), tmp_path / "optuna.journal", budget_epochs=2)


def test_results_of_a_rerun_finished_trial_leave_its_record_alone(tmp_path: Path) -> None:
    first = _searcher(tmp_path)
    first.suggest("a")
    first.on_trial_result("a", {"epoch": 1, "val_top1": 50.0})
    first.save(str(tmp_path / "state.pkl"))  # Tune's last snapshot: "a" at epoch 1
    first.on_trial_result("a", {"epoch": 2, "val_top1": 60.0})
    first.on_trial_complete("a", {"epoch": 2, "val_top1": 60.0})  # then the driver died

    # Tune restores "a" as unfinished and runs its last epoch again.
    second = _searcher(tmp_path)
    second.restore(str(tmp_path / "state.pkl"))
    second.on_trial_result("a", {"epoch": 2, "val_top1": 58.0})
    second.on_trial_complete("a", {"epoch": 2, "val_top1": 58.0})
    (a,) = second.study.trials
    assert a.state == optuna.trial.TrialState.COMPLETE
    assert a.values == [60.0] and a.intermediate_values == {1: 50.0, 2: 60.0}


def test_a_trial_finished_after_the_last_snapshot_counts_toward_the_search(
    tmp_path: Path,
) -> None:
    first = _searcher(tmp_path)
    first.suggest("a")
    first.save(str(tmp_path / "state.pkl"))  # Tune's last snapshot knows "a" only
    first.suggest("b")  # "b" starts and finishes within seconds, then the driver dies
    first.on_trial_complete("b", {"epoch": 2, "val_top1": 40.0})

    second = _searcher(tmp_path)
    second.restore(str(tmp_path / "state.pkl"))
    # Tune reruns "a"; the study already holds "b": num_trials 2 is reached, nothing new
    assert second.suggest("c") == OptunaSearcher.FINISHED
    assert len(second.study.trials) == 2


def test_another_experiments_finished_trials_do_not_count(tmp_path: Path) -> None:
    first = _searcher(tmp_path)
    first.suggest("a")
    first.on_trial_complete("a", {"epoch": 2, "val_top1": 40.0})
    extension = OptunaSearcher(
        parse_spec_text(SPEC), tmp_path / "optuna.journal", budget_epochs=2, trials=1, extension=1
    )
    assert extension.suggest("x") not in (None, OptunaSearcher.FINISHED)
