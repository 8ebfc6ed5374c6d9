"""`rsearch best`'s table: a scaling search shows the depth, width and resolution it produced."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from rsearch.cli.search import _best_table
from rsearch.tune.results import best_trials
from tests.report.rundirs import COMPOUND, make_run, random_trials


def _render(table: object) -> str:
    console = Console(width=400, record=True)
    console.print(table)
    return console.export_text()


def test_scaling_search_shows_the_values_its_strategy_produced(tmp_path: Path) -> None:
    trials = random_trials(3, 5, ("val_top1",))
    for t, (alpha, beta) in zip(trials, [(1.0, 1.2), (1.4, 1.0), (1.2, 1.1)], strict=True):
        t.params.update({"scaling.alpha": alpha, "scaling.beta": beta, "scaling.gamma_band": 0.5})
    run_dir, _ = make_run(tmp_path, trials, scaling=COMPOUND)
    spec, best = best_trials(run_dir)
    text = _render(_best_table(spec, best, "best trial"))

    header = next(line for line in text.splitlines() if "trial" in line and "optim.lr" in line)
    for column in ("model.depth_multiplier", "model.width_multiplier", "data.image_size"):
        assert column in header
    recipe = best[0].recipe
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    row = next(cells for cells in rows if cells[0].strip() == str(best[0].number))
    cells = [c.strip() for c in row]
    assert cells[3:6] == [
        f"{recipe.model.depth_multiplier:.4g}",
        f"{recipe.model.width_multiplier:.4g}",
        str(recipe.data.image_size),
    ]


def test_plain_search_shows_only_its_space(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(3, 6, ("val_top1",)))
    spec, best = best_trials(run_dir)
    text = _render(_best_table(spec, best, "best trial"))
    assert "optim.lr" in text and "model.depth_multiplier" not in text
