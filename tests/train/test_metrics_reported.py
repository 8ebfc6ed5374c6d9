"""What fit reports is exactly the metrics table (rsearch.spec.metrics), learnt by training."""

from __future__ import annotations

from rsearch.spec.metrics import METRICS
from rsearch.train import fit
from tests.train.train_helpers import RecipeFactory


def test_fit_reports_exactly_the_tables_metrics(make_recipe: RecipeFactory) -> None:
    reports: list[dict[str, float]] = []
    recipe = make_recipe(
        data={"dataset": "digits", "image_size": 16, "fraction": 0.1},
        ema={"enabled": True},
        epochs=2,
    )
    final = fit(recipe, lambda metrics, _checkpoint: reports.append(metrics))
    # Ten classes: the two-class rows (sensitivity, specificity) are not reported.
    every_epoch = {m.name for m in METRICS if m.when in ("epoch", "ema") and not m.binary}
    assert set(reports[0]) == every_epoch  # EMA on: its metrics every epoch
    # the last adds "last"; "start" is the trial driver's, not fit's
    last = {m.name for m in METRICS if m.when != "start" and not m.binary}
    assert set(reports[1]) == set(final) == last


def test_a_two_class_task_reports_every_row(make_recipe: RecipeFactory) -> None:
    final = fit(make_recipe(data={"num_classes": 2}))
    assert set(final) == {m.name for m in METRICS if m.when not in ("ema", "start")}


def test_ema_metrics_only_with_ema(make_recipe: RecipeFactory) -> None:
    final = fit(make_recipe())  # four classes: no two-class rows
    expected = {m.name for m in METRICS if m.when not in ("ema", "start") and not m.binary}
    assert set(final) == expected
