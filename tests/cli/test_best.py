"""`rsearch best RUN_DIR`: the best trial (or Pareto set) as a table, JSON or YAML, and its
recipe exported for `rsearch train`; a wrong run directory or option is one message, exit 2.

The run directories are hand-made (a real Optuna journal study, no Ray): each test knows the
trials, so the expected best is computed here, independently of rsearch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from rsearch.cli import app
from rsearch.rundir import MANIFEST
from rsearch.spec import load_recipe
from tests.cli.helpers import fails_cleanly, invoke, runner
from tests.report.rundirs import Trial, brute_force_front, make_run, random_trials

PARETO = [
    {"metric": "val_top1", "mode": "max"},
    {"metric": "infer_latency_ms", "mode": "min"},
]


def _single(tmp_path: Path) -> tuple[Path, Trial, int]:
    """A finished single-objective run, its best trial and that trial's number."""
    trials = random_trials(5, 21, ("val_top1",))
    run_dir, _ = make_run(tmp_path, trials)
    scores = [t.metrics["val_top1"] for t in trials]
    assert len(set(scores)) == len(scores)  # one best, no tie
    number = scores.index(max(scores))
    return run_dir, trials[number], number


def _wide_front(tmp_path: Path) -> Path:
    """Six trials, each more accurate and slower than the last: all six on the Pareto front."""
    trials = random_trials(6, 22, ("val_top1", "infer_latency_ms"))
    for i, t in enumerate(trials):
        t.metrics.update(val_top1=60.0 + i, infer_latency_ms=1.0 + i)
        t.values = [60.0 + i, 1.0 + i]
    run_dir, _ = make_run(tmp_path, trials, objective=PARETO)
    return run_dir


def _rows(table: str) -> dict[str, list[str]]:
    """The rows of rich tables, header included: first cell -> the cells after it, across
    every table printed."""
    rows: dict[str, list[str]] = {}
    for line in table.splitlines():
        if line[:1] in ("│", "┃"):
            name, *cells = (c.strip() for c in line[1:-1].split(line[0]))
            rows.setdefault(name, []).extend(cells)
    return rows


def test_table_of_a_pareto_set_fits_80_columns(tmp_path: Path) -> None:
    run_dir = _wide_front(tmp_path)
    res = runner.invoke(app, ["best", str(run_dir)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    assert res.stdout.startswith("Pareto set")
    rows = _rows(res.stdout)
    assert rows["field"] == [f"trial {n}" for n in range(6)]  # every trial, none cut
    assert rows["val_top1 (max)"] == [str(60 + n) for n in range(6)]
    assert rows["infer_latency_ms (min)"] == [str(1 + n) for n in range(6)]
    assert {"optim.lr", "loss.label_smoothing"} <= set(rows)  # names never shortened


def test_table_of_the_best_trial(tmp_path: Path) -> None:
    run_dir, best, number = _single(tmp_path)
    res = runner.invoke(app, ["best", str(run_dir)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("best trial")
    rows = _rows(res.stdout)
    assert rows["field"] == [f"trial {number}"]
    assert rows["optim.lr"] == [f"{best.params['optim.lr']:.4g}"]
    assert rows["val_top1 (max)"] == [f"{best.metrics['val_top1']:.4g}"]


def test_json(tmp_path: Path) -> None:
    run_dir, best, number = _single(tmp_path)
    res = invoke("best", run_dir, "--format", "json")
    assert res.exit_code == 0, res.output
    (shown,) = json.loads(res.stdout)
    assert shown["trial"] == number and shown["state"] == "COMPLETE"
    assert shown["params"] == best.params
    assert shown["values"] == [best.metrics["val_top1"]]
    assert shown["metrics"] == best.metrics


def test_yaml_of_a_pareto_set(tmp_path: Path) -> None:
    trials = random_trials(12, 23, ("val_top1", "infer_latency_ms"))
    run_dir, _ = make_run(tmp_path, trials, objective=PARETO)
    front = brute_force_front(
        {i: list(t.values or []) for i, t in enumerate(trials)}, ["max", "min"]
    )
    assert 1 < len(front) < 12  # the seed gives a real front, not everything
    res = invoke("best", run_dir, "--format", "yaml")
    assert res.exit_code == 0, res.output
    shown = yaml.safe_load(res.stdout)
    assert {t["trial"] for t in shown} == front
    for t in shown:
        assert t["values"] == trials[t["trial"]].values


def test_export_writes_a_recipe_train_accepts(tmp_path: Path) -> None:
    run_dir, best, number = _single(tmp_path)
    export = tmp_path / "best.yaml"
    res = invoke("best", run_dir, "--format", "json", "--export", export)
    assert res.exit_code == 0, res.output
    assert f"recipe written to {export}" in res.stderr
    recipe = load_recipe(export)
    assert recipe.optim.lr == best.params["optim.lr"]
    assert recipe.loss.label_smoothing == best.params["loss.label_smoothing"]
    assert (recipe.model.name, recipe.data.dataset, recipe.epochs) == ("test_resnet", "digits", 3)
    header = export.read_text().splitlines()[:2]
    assert header == [
        f"# Best recipe of search 'report-demo' (trial {number}), from {run_dir}.",
        f"# Train it alone with: rsearch train {export}",
    ]


def test_not_a_run_directory(tmp_path: Path) -> None:
    fails_cleanly(
        "best",
        tmp_path,
        expect=f"error: {tmp_path} is not an rsearch run directory (no {MANIFEST})",
    )


def test_no_completed_trial(tmp_path: Path) -> None:
    params = {"optim.lr": 0.01, "loss.label_smoothing": 0.1}
    running = Trial(TrialState.RUNNING, params)
    pruned = Trial(TrialState.PRUNED, params, {"epoch": 1.0, "val_top1": 20.0}, curve={1: 20.0})
    run_dir, _ = make_run(tmp_path, [running, pruned])
    fails_cleanly(
        "best", run_dir, expect="error: no trial of search 'report-demo' has completed yet"
    )


def test_unknown_format(tmp_path: Path) -> None:
    run_dir, _, _ = _single(tmp_path)
    # A click usage error: its usage banner, then one `Error:` line naming the choices.
    stderr = fails_cleanly(
        "best",
        run_dir,
        "--format",
        "pdf",
        expect="'pdf' is not one of 'table', 'json', 'yaml'",
        lines=4,
    )
    assert stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--format'")


@pytest.mark.parametrize("where", ["missing/best.yaml", "."], ids=["no such folder", "a folder"])
def test_export_path_that_cannot_be_written(tmp_path: Path, where: str) -> None:
    run_dir, _, _ = _single(tmp_path / "search")
    export = tmp_path / where
    fails_cleanly("best", run_dir, "--export", export, expect=str(export))
