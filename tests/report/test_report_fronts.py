"""Top-1-vs-cost fronts that draw no noise: one shared value gets a sentence, not a front; speed
front points closer than their measured spread are marked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure
from optuna.trial import TrialState

from rsearch.report import write_report
from rsearch.report.data import TrialRecord, load_search
from rsearch.report.figures import _front_points
from rsearch.report.pareto import COST_AXES, accuracy_front, plotted_axes
from rsearch.report.spread import SPREAD_METRICS, speed_front, within_spread
from rsearch.spec.metrics import BY_NAME
from tests.report.rundirs import Trial, make_run

AXIS = {a.metric: a for a in COST_AXES}
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


THROUGHPUT = [(80.0, 1000.0), (78.0, 1020.0), (70.0, 1326.0)]
"""Top-1 and images/s of a 3-point front: #0 and #1 are 2% apart, #1 and #2 are 30% apart."""
LATENCY = [(70.0, 1.0), (78.0, 1.02), (80.0, 1.326)]
"""Top-1 and ms of a 3-point latency front with the same gaps (lower is better)."""


@pytest.mark.parametrize(
    ("metric", "points"),
    [("infer_images_per_s", THROUGHPUT), ("infer_latency_ms", LATENCY)],
)
def test_front_points_closer_than_their_spread_are_marked(
    tmp_path: Path, metric: str, points: list[tuple[float, float]]
) -> None:
    spread = SPREAD_METRICS[metric]
    rows = [{"val_top1": top1, metric: value, spread: 5.0} for top1, value in points]
    run_dir, _ = make_run(tmp_path, trials(rows))
    search = load_search(run_dir)
    axis = AXIS[metric]
    assert accuracy_front(search, axis) == {0, 1, 2}

    assert within_spread(search, axis) == {0, 1}
    front = {p.number: p for p in speed_front(search, axis)}
    assert front[0].neighbour == 1 and front[0].gap_pct == pytest.approx(100 * 0.02 / 1.01)
    assert front[0].combined_pct == pytest.approx(5 * (1**2 + 1.02**2) ** 0.5 / 1.01)
    assert front[2].neighbour == 1 and not front[2].within_spread

    report = write_report(run_dir, fmt="md")
    text = report.page.read_text()
    assert f"Within measured spread (order on {metric} not resolved): #0 and #1." in text
    table = {
        cells[1]: cells
        for line in text.splitlines()
        if line.startswith(f"| {metric} |")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert [table[n][-1] for n in ("#0", "#1", "#2")] == ["within spread"] * 2 + ["resolved"]
    assert "sqrt(a^2 + b^2)" in text


def test_fronts_without_a_measured_spread_are_not_marked(tmp_path: Path) -> None:
    rows = [{"val_top1": top1, "infer_images_per_s": v} for top1, v in THROUGHPUT]
    run_dir, _ = make_run(tmp_path, trials(rows))
    search = load_search(run_dir)
    axis = AXIS["infer_images_per_s"]
    assert within_spread(search, axis) == set()
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "Top-1 vs infer_images_per_s: front #0, #1, #2." in text
    assert "Within measured spread" not in text and "| infer_images_per_s |" not in text


def test_a_neighbour_without_spread_leaves_the_pair_unmarked(tmp_path: Path) -> None:
    rows = [{"val_top1": top1, "infer_images_per_s": v} for top1, v in THROUGHPUT]
    rows[0]["infer_spread_pct"] = 5.0  # #1, its only neighbour, has none: nothing to compare
    rows[2]["infer_spread_pct"] = 5.0
    run_dir, _ = make_run(tmp_path, trials(rows))
    search = load_search(run_dir)
    assert within_spread(search, AXIS["infer_images_per_s"]) == set()
    text = write_report(run_dir, fmt="md").page.read_text()
    rows_of_table = [
        line for line in text.splitlines() if line.startswith("| infer_images_per_s |")
    ]
    assert len(rows_of_table) == 3 and all(line.endswith("| - |") for line in rows_of_table)


def test_front_points_within_spread_are_drawn_hollow() -> None:
    records = [
        TrialRecord(i, "COMPLETE", {}, [top1], {"val_top1": top1, "infer_images_per_s": v})
        for i, (top1, v) in enumerate(THROUGHPUT)
    ]
    ax = Figure().subplots()
    _front_points(ax, AXIS["infer_images_per_s"], records, {0, 1, 2}, {0, 1})
    drawn = {c.get_label(): c for c in ax.collections}
    assert set(drawn) == {"dominated (0)", "front (1)", "front, within spread (2)"}
    hollow = drawn["front, within spread (2)"]
    assert len(hollow.get_facecolors()) == 0 and len(hollow.get_edgecolors()) == 1
    assert len(drawn["front (1)"].get_facecolors()) == 1


def test_spread_names_are_summary_metrics_once_the_table_has_them() -> None:
    # The metrics table gains these names with the spread measurement; until then the report
    # reads them from the trials' summaries by name alone.
    assert set(SPREAD_METRICS) == {a.metric for a in COST_AXES if a.kind == "speed"}
    for name in SPREAD_METRICS.values():
        if name in BY_NAME:
            assert BY_NAME[name].summary, name
