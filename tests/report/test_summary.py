"""The last lines of a search: its best trial's gain over the warm-start recipe."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from rsearch.report.summary import search_outcome
from rsearch.rundir import open_run
from tests.report.rundirs import SPEC, Trial, make_run


def _run(tmp_path: Path, warm: Trial) -> Path:
    SPEC["search"]["warm_start"] = [{"optim.lr": 0.01}]  # type: ignore[index]
    try:
        best = Trial(TrialState.COMPLETE, {"optim.lr": 0.1}, values=[80.0], curve={1: 40, 3: 80})
        run_dir, _ = make_run(tmp_path, [warm, best])
    finally:
        del SPEC["search"]["warm_start"]  # type: ignore[attr-defined]
    return run_dir


def test_a_completed_warm_start_is_compared_at_the_end(tmp_path: Path) -> None:
    warm = Trial(TrialState.COMPLETE, {"optim.lr": 0.01}, values=[60.0], curve={3: 60.0})
    outcome = search_outcome(open_run(_run(tmp_path, warm)))
    assert outcome.gain == 20.0 and outcome.warm_stopped_at is None
    assert outcome.gain_line("val_top1") == (
        "gain over the warm-start recipe (trial 0): +20 val_top1"
    )


def test_a_warm_start_the_scheduler_stopped_is_compared_where_it_stopped(tmp_path: Path) -> None:
    warm = Trial(TrialState.PRUNED, {"optim.lr": 0.01}, curve={1: 10.0, 2: 12.5})
    outcome = search_outcome(open_run(_run(tmp_path, warm)))
    assert outcome.gain == 67.5 and outcome.warm_stopped_at == 2
    assert outcome.gain_line("val_top1") == (
        "gain over the warm-start recipe (trial 0, stopped by the scheduler after epoch 2): "
        "+67.5 val_top1"
    )
