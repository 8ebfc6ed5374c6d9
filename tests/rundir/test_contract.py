"""The searcher's records through the readers of `best` and `report`, without a Ray cluster.

The writer (the driver's run files, `OptunaSearcher` told Tune's events) and the readers
(`rsearch best`, `rsearch report`, tracking's best-trial look-up) meet here in seconds, so a
change on one side that the other does not follow fails fast, not only in the slow searches.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.rundir import (
    Run,
    TrialView,
    best_trials,
    create_run_dir,
    open_run,
    open_study,
    trial_views,
)
from rsearch.settings import resolve_storage
from rsearch.spec import parse_spec_text
from rsearch.tune.driver import write_run_files
from rsearch.tune.optuna_searcher import PARAMS, OptunaSearcher

runner = CliRunner()

SPEC = """
name: contract
objective: {metric: val_top1, mode: max}
search: {algorithm: random, num_trials: 3, seed: 1}
scheduler: {type: asha, max_t: 3, grace_period: 1}
base:
  model: {name: test_resnet}
  data: {dataset: digits, image_size: 16}
  epochs: 3
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""

CURVES = {"t1": [50.0, 70.0, 90.0], "t2": [40.0], "t3": [55.0, 60.0, 65.0]}
"""Per-epoch val_top1 of three Tune trials: t2 stopped by the scheduler after one epoch."""


@pytest.fixture
def searched_run(tmp_path: Path) -> Path:
    spec = parse_spec_text(SPEC)
    run_dir = create_run_dir(tmp_path / "runs", spec.name)
    run = write_run_files(
        run_dir, spec, None, None, False, resolve_storage(str(tmp_path / "runs")), None
    )
    searcher = OptunaSearcher(spec, run.study_file, spec.budget_epochs)
    for trial_id, curve in CURVES.items():
        config = searcher.suggest(trial_id)
        assert config is not None and "optim.lr" in config[PARAMS]
        for epoch, value in enumerate(curve, 1):
            result = {"epoch": epoch, "val_top1": value, "params_m": 0.1, "trial_id": trial_id}
            if epoch < len(curve):
                searcher.on_trial_result(trial_id, result)
        searcher.on_trial_complete(trial_id, result)
        (run_dir / f"trial_driver_{trial_id}").mkdir()
        lines = [
            json.dumps({"trial_id": trial_id, "epoch": e, "val_top1": v})
            for e, v in enumerate(curve, 1)
        ]
        (run_dir / f"trial_driver_{trial_id}" / "result.json").write_text("\n".join(lines) + "\n")
    return run_dir


def test_best_reads_what_the_searcher_wrote(searched_run: Path) -> None:
    res = runner.invoke(app, ["best", str(searched_run), "--format", "json"])
    assert res.exit_code == 0, res.output
    (best,) = json.loads(res.stdout)
    assert best["tune_trial_id"] == "t1" and best["state"] == "COMPLETE"
    assert best["values"] == [90.0] and best["metrics"]["epoch"] == 3.0

    run = open_run(searched_run)
    states = {t.tune_trial_id: t.state for t in _views(run)}
    assert states == {"t1": "COMPLETE", "t2": "PRUNED", "t3": "COMPLETE"}
    assert [t.tune_trial_id for t in best_trials(_study(run), run.spec)] == ["t1"]


def test_report_reads_what_the_searcher_wrote(searched_run: Path) -> None:
    from rsearch.report.data import load_search

    search = load_search(searched_run)
    by_state = {t.number: t.state for t in search.trials}
    assert sorted(by_state.values()) == ["COMPLETE", "COMPLETE", "PRUNED"]
    curves = {len(t.curve) for t in search.trials}
    assert curves == {1, 3}  # Tune's curves matched to Optuna's trials by the Tune id
    res = runner.invoke(app, ["report", str(searched_run), "--no-mlflow", "--format", "md"])
    assert res.exit_code == 0, res.output
    page = (searched_run / "report" / "report.md").read_text()
    assert "## Best trials" in page and "## Learning curves" in page


def _study(run: Run) -> optuna.Study:
    return open_study(run.study_file, run.spec.name)


def _views(run: Run) -> list[TrialView]:
    return trial_views(_study(run))
