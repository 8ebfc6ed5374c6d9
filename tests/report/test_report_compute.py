"""The report's Compute and Low-fidelity ranking sections, from hand-made run directories."""

from __future__ import annotations

import json
from pathlib import Path

from optuna.trial import TrialState

from rsearch.report import write_report
from rsearch.rundir import ComputeRecord, TrialSpend, write_compute
from rsearch.rundir.compute import Planned
from rsearch.rundir.run import open_run
from tests.report.rundirs import SECTIONS, Trial, make_run


def _trials(values: list[float]) -> list[Trial]:
    return [
        Trial(TrialState.COMPLETE, {"optim.lr": 0.01 * (i + 1)}, values=[v], curve={3: v})
        for i, v in enumerate(values)
    ]


def _write_results(run_dir: Path, curves: dict[str, list[float]]) -> None:
    # Tune's per-trial result.json: one JSON line per reported epoch.
    for trial_id, curve in curves.items():
        trial_dir = run_dir / f"trial_{trial_id}"
        trial_dir.mkdir()
        lines = [
            json.dumps({"trial_id": trial_id, "epoch": e, "val_top1": v})
            for e, v in enumerate(curve, start=1)
        ]
        (trial_dir / "result.json").write_text("\n".join(lines) + "\n")


def test_the_compute_section_puts_spend_beside_plan_and_budget(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, _trials([50.0, 60.0]))
    record = ComputeRecord(
        trials={
            "t000": TrialSpend(flops=2e12, device_s=1800.0, epochs=3),
            "t001": TrialSpend(flops=1e12, device_s=1800.0, device_kind="NVIDIA A100", epochs=1),
        },
        budget_flops=4e12,
        planned=Planned(total_flops=3.5e12, total_device_hours=0.9),
        stop_reason="budget: a new trial's first rung needs 1e+12 FLOPs and 1e+12 remain",
        wall_s=600.0,
    )
    write_compute(run_dir, record)
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "## Compute" in text
    assert "| spent | 3e+12 | 1 |" in text
    assert "| planned | 3.5e+12 | 0.9 |" in text
    assert "| budget | 4e+12 | - |" in text
    assert "0.5 NVIDIA A100, 0.5 cpu" in text and "stopped: budget" in text


def test_an_asha_search_reports_how_its_first_rung_ranked_the_trials(tmp_path: Path) -> None:
    run_dir, spec = make_run(tmp_path, _trials([90.0, 80.0, 70.0, 60.0]))
    # The hand-made spec has no scheduler: give the run an ASHA one (rungs at 1 of 3 epochs).
    resolved = run_dir / "resolved.yaml"
    resolved.write_text(
        resolved.read_text().replace(
            "scheduler:\n  type: none", "scheduler:\n  type: asha\n  grace_period: 1"
        )
    )
    assert open_run(run_dir).spec.scheduler.type == "asha"
    # After one epoch the ranking is exactly reversed: the rung misleads.
    _write_results(
        run_dir,
        {
            "t000": [10.0, 50.0, 90.0],
            "t001": [20.0, 50.0, 80.0],
            "t002": [30.0, 50.0, 70.0],
            "t003": [40.0, 50.0, 60.0],
        },
    )
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "## Low-fidelity ranking" in text
    assert "| 1 | 3 | 4 | -1 | -1 |" in text
    assert "WARNING: the rung at 1 ranks trials unlike the rung at 3" in text


def test_a_run_without_a_compute_record_keeps_the_sections_it_had(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, _trials([50.0, 60.0]))
    text = write_report(run_dir, fmt="md").page.read_text()
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == SECTIONS
