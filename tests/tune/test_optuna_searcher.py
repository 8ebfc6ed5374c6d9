"""The Optuna searcher on its own (no Ray cluster): states told, orphans adopted, budget kept."""

from __future__ import annotations

import pickle
from pathlib import Path

import optuna
import pytest

from rsearch.rundir import StudyNotFound
from rsearch.spec import parse_spec_text
from rsearch.tune.optuna_searcher import OptunaSearcher

SPEC = """
name: s
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 3}
scheduler: {type: asha, max_t: 3}
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""


def _searcher(tmp_path: Path) -> OptunaSearcher:
    spec = parse_spec_text(SPEC)
    return OptunaSearcher(spec, tmp_path / "optuna.journal", budget_epochs=3)


def test_stopped_early_is_pruned_with_its_curve(tmp_path: Path) -> None:
    s = _searcher(tmp_path)
    s.suggest("a")
    s.suggest("b")
    s.suggest("c")
    s.on_trial_result("a", {"epoch": 1, "val_top1": 50.0})
    s.on_trial_result("a", {"epoch": 1, "val_top1": 51.0})  # a repeated epoch is ignored
    # Tune hands the result a scheduler stopped on only to on_trial_complete
    s.on_trial_complete("a", {"epoch": 2, "val_top1": 55.0})
    for epoch in (1, 2, 3):
        s.on_trial_result("b", {"epoch": epoch, "val_top1": 60.0 + epoch})
    s.on_trial_complete("b", {"epoch": 3, "val_top1": 63.0, "params_m": 11.2})
    s.on_trial_complete("c", None, error=True)
    a, b, c = s.study.trials
    assert a.state == optuna.trial.TrialState.PRUNED
    assert a.intermediate_values == {1: 50.0, 2: 55.0}
    assert b.state == optuna.trial.TrialState.COMPLETE and b.values == [63.0]
    assert b.user_attrs["metrics"]["params_m"] == 11.2 and b.user_attrs["tune_trial_id"] == "b"
    assert c.state == optuna.trial.TrialState.FAIL
    assert s.suggest("d") == "FINISHED"


def test_restored_searcher_adopts_orphans_and_keeps_the_budget(tmp_path: Path) -> None:
    first = _searcher(tmp_path)
    first.suggest("a")
    first.save(str(tmp_path / "state.pkl"))  # Tune's last snapshot knew only "a"
    orphan = first.suggest("b")  # asked after the snapshot, then the driver died
    assert orphan is not None

    second = _searcher(tmp_path)
    second.restore(str(tmp_path / "state.pkl"))
    assert second.suggest("a") is None  # Tune restores "a" itself
    adopted = second.suggest("x")
    assert adopted == orphan  # the same values, and the same study trial named
    assert second.suggest("y") is not None
    assert second.suggest("z") == "FINISHED"
    assert len(second.study.trials) == 3
    assert second.study.trials[1].user_attrs["tune_trial_id"] == "x"


def test_a_restored_searcher_never_creates_a_fresh_study(tmp_path: Path) -> None:
    """Unpickled by a resumed experiment, it loads its study; a missing one is an error."""
    searcher = _searcher(tmp_path)
    assert searcher.study.study_name == "s"  # a new search creates it
    restored = pickle.loads(pickle.dumps(searcher))
    assert restored.study.study_name == "s"
    (tmp_path / "optuna.journal").unlink()
    with pytest.raises(StudyNotFound, match="has no Optuna study"):
        _ = pickle.loads(pickle.dumps(searcher)).study
    assert not (tmp_path / "optuna.journal").exists()
