"""`rsearch best`'s table: transposed to stay readable at 80 columns; a scaling search shows
the depth, width and resolution its strategy produced."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from rsearch.report.best_table import best_tables
from tests.report.rundirs import COMPOUND, make_run, random_trials
from tests.study_helpers import run_best


def _render(tables: list[object], width: int = 80) -> str:
    console = Console(width=width, record=True)
    for table in tables:
        console.print(table)
    return console.export_text()


def _rows(text: str) -> dict[str, list[str]]:
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows if cells}


def test_scaling_search_shows_the_values_its_strategy_produced(tmp_path: Path) -> None:
    trials = random_trials(3, 5, ("val_top1",))
    for t, (alpha, beta) in zip(trials, [(1.0, 1.2), (1.4, 1.0), (1.2, 1.1)], strict=True):
        t.params.update({"scaling.alpha": alpha, "scaling.beta": beta, "scaling.gamma_band": 0.5})
    run_dir, _ = make_run(tmp_path, trials, scaling=COMPOUND)
    spec, best = run_best(run_dir)
    rows = _rows(_render(best_tables(spec, best)))

    recipe = best[0].recipe(spec)
    assert rows["model.depth_multiplier"] == [f"{recipe.model.depth_multiplier:.4g}"]
    assert rows["model.width_multiplier"] == [f"{recipe.model.width_multiplier:.4g}"]
    assert rows["data.image_size"] == [str(recipe.data.image_size)]
    assert rows["val_top1 (max)"] == [f"{best[0].values[0]:.4g}"]


def test_plain_search_shows_only_its_space(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(3, 6, ("val_top1",)))
    spec, best = run_best(run_dir)
    text = _render(best_tables(spec, best))
    assert "optim.lr" in text and "model.depth_multiplier" not in text


def test_long_names_and_a_wide_pareto_set_fit_80_columns(tmp_path: Path) -> None:
    objectives = ("val_top1", "infer_latency_ms")
    trials = random_trials(6, 7, objectives)
    for i, t in enumerate(trials):  # each more accurate and slower: all on the front
        t.metrics.update(val_top1=60.0 + i, infer_latency_ms=1.0 + i)
        t.values = [60.0 + i, 1.0 + i]
    run_dir, _ = make_run(
        tmp_path,
        trials,
        objective=[
            {"metric": "val_top1", "mode": "max"},
            {"metric": "infer_latency_ms", "mode": "min"},
        ],
    )
    spec, best = run_best(run_dir)
    assert len(best) > 4  # more trials than one table shows side by side
    text = _render(best_tables(spec, best))
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in ("loss.label_smoothing", "infer_latency_ms (min)", "val_top1 (max)"):
        assert name in text  # never cut to `loss.lab…`
    shown = {int(h) for h in __import__("re").findall(r"trial (\d+)", text)}
    assert shown == {t.number for t in best}
