"""Top-1-vs-cost fronts that draw no noise: one shared value gets a sentence, not a front."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from rsearch.report import write_report
from rsearch.report.data import load_search
from rsearch.report.pareto import COST_AXES, plotted_axes
from tests.report.rundirs import Trial, make_run

RESNET18 = {"params_m": 11.18, "gflops": 0.0364}


def trials(rows: list[dict[str, float]]) -> list[Trial]:
    """Completed trials with the given final metrics (val_top1 is the objective)."""
    return [
        Trial(
            TrialState.COMPLETE,
            {"optim.lr": 0.01 * (i + 1), "loss.label_smoothing": 0.02 * i},
            {"epoch": 3.0, **row},
            [row["val_top1"]],
        )
        for i, row in enumerate(rows)
    ]


def speed_rows(n: int) -> list[dict[str, float]]:
    """n trials whose speed trades against top-1 (a real front on both speed axes)."""
    return [
        {
            "val_top1": 90.0 - 5 * i,
            "infer_images_per_s": 1000.0 * (i + 1),
            "infer_latency_ms": 1.0 / (i + 1),
        }
        for i in range(n)
    ]


def report_text(tmp_path: Path, rows: list[dict[str, float]]) -> tuple[str, set[str]]:
    run_dir, _ = make_run(tmp_path, trials(rows))
    report = write_report(run_dir, fmt="md")
    return report.page.read_text(), {f.name for f in report.figures}


def test_same_architecture_gets_a_sentence_instead_of_params_and_flops_fronts(
    tmp_path: Path,
) -> None:
    rows = [{**r, **RESNET18} for r in speed_rows(4)]
    rows[2]["params_m"] *= 1 + 1e-8  # float noise of one architecture's count is no trade-off
    text, figures = report_text(tmp_path, rows)

    assert (
        "All 4 trials have the same architecture (11.18 M params, 0.0364 GFLOPs): "
        "no parameter or FLOP front." in text
    )
    assert "Top-1 vs params_m" not in text and "Top-1 vs gflops" not in text
    assert not {"pareto_params_m.png", "pareto_gflops.png"} & figures
    assert {"pareto_infer_images_per_s.png", "pareto_infer_latency_ms.png"} <= figures
    assert "Top-1 vs infer_images_per_s: front #0, #1, #2, #3." in text


def test_mixed_architectures_draw_every_front(tmp_path: Path) -> None:
    rows = speed_rows(4)
    for i, row in enumerate(rows):  # smaller and cheaper models are the less accurate ones
        row.update(params_m=25.0 - 5 * i, gflops=4.0 - i)
    text, figures = report_text(tmp_path, rows)

    assert "same architecture" not in text and "All 4 trials" not in text
    assert {f"pareto_{a.metric}.png" for a in COST_AXES} <= figures
    for metric in ("params_m", "gflops"):
        assert f"Top-1 vs {metric}: front #0, #1, #2, #3." in text


def test_one_architecture_at_several_resolutions_keeps_its_flops_front(tmp_path: Path) -> None:
    rows = speed_rows(3)
    for i, row in enumerate(rows):
        row.update(params_m=11.18, gflops=0.0364 / (i + 1))
    text, figures = report_text(tmp_path, rows)

    assert (
        "All 3 trials have the same parameter count (11.18 M params): no parameter front." in text
    )
    assert "pareto_gflops.png" in figures and "pareto_params_m.png" not in figures


def test_identical_speeds_get_a_sentence_instead_of_speed_fronts(tmp_path: Path) -> None:
    rows = [
        {"val_top1": 80.0 + i, "infer_images_per_s": 1500.0, "infer_latency_ms": 0.8}
        for i in range(3)
    ]
    run_dir, _ = make_run(tmp_path, trials(rows))
    search = load_search(run_dir)
    assert plotted_axes(search) == []
    text = write_report(run_dir, fmt="md").page.read_text()
    assert (
        "All 3 trials have the same measured speed (1500 images/s, 0.8 ms): "
        "no throughput or latency front." in text
    )
    assert "No completed trial has measured accuracy" not in text
    assert "pareto_" not in text
