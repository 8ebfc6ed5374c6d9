"""The report's in- vs out-of-distribution section (data.eval_splits), from hand-made trials."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from rsearch.report import write_report
from tests.report import rundirs
from tests.report.rundirs import Trial, make_run

SPLITS = {"rotated": "/data/rotated", "shifted": "/data/shifted"}


def _trial(val: float, rotated: float, shifted: float | None = None) -> Trial:
    metrics = {"val_top1": val, "rotated_top1": rotated}
    if shifted is not None:
        metrics["shifted_top1"] = shifted
    return Trial(TrialState.COMPLETE, {"optim.lr": 0.01}, metrics, values=[val])


def test_the_report_sets_validation_beside_each_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {**rundirs.SPEC["base"], "data": {"dataset": "digits", "eval_splits": SPLITS}}  # type: ignore[dict-item]
    monkeypatch.setitem(rundirs.SPEC, "base", base)
    trials = [_trial(90.0, 40.0, 85.0), _trial(95.5, 30.25, 90.0), _trial(80.0, 50.0)]
    run_dir, _ = make_run(tmp_path, trials)
    report = write_report(run_dir, fmt="md")
    text = report.page.read_text()
    section = text.split("## In- vs out-of-distribution accuracy")[1]
    header = "| trial | val top-1 (%) | rotated top-1 (%) | shifted top-1 (%) | rotated gap (pts) |"
    assert header in section
    rows = [line for line in section.splitlines() if line.startswith("| #")]
    # Best validation first; the trial without a shifted result is left out.
    assert rows == [
        "| #1 | 95.5 | 30.2 | 90.0 | +65.2 | +5.5 |",
        "| #0 | 90.0 | 40.0 | 85.0 | +50.0 | +5.0 |",
    ]
    assert any(f.name == "ood_accuracy.png" and f.stat().st_size > 0 for f in report.figures)


def test_no_section_without_splits(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, [_trial(90.0, 40.0)])
    assert "out-of-distribution" not in write_report(run_dir, fmt="md").page.read_text()
