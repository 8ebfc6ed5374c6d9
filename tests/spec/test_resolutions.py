"""The sizes a data section trains and evaluates at: one rule for training and validation."""

from __future__ import annotations

from rsearch.spec.data_section import DataConfig, Stage
from rsearch.spec.input_size import recipe_sizes
from rsearch.spec.resolutions import eval_sizes, final_eval_size, step_resolutions, train_sizes


def test_fixres_evaluates_each_train_size_times_the_ratio() -> None:
    data = DataConfig(
        image_size=64,
        progressive=[Stage(epochs=1, image_size=32)],
        eval_rule="fixres",
        fixres_ratio=1.5,
        eval_resolutions=[40],
    )

    assert train_sizes(data) == [32, 64]
    assert eval_sizes(data) == [40, 48, 96]
    assert final_eval_size(data) == 96
    assert recipe_sizes(data) == [32, 40, 48, 64, 96]


def test_validation_counts_step_resolutions_a_search_may_switch_on() -> None:
    # multi_resolution off: training draws no per-step size, but a search space may turn it
    # on, so the input-size check still covers the set.
    data = DataConfig(image_size=32, train_resolutions=[16, 48], multi_resolution=False)

    assert step_resolutions(data) == []
    assert train_sizes(data) == [32]
    assert recipe_sizes(data) == [16, 32, 48]
    on = data.model_copy(update={"multi_resolution": True})
    assert train_sizes(on) == [16, 32, 48]
    assert recipe_sizes(on) == recipe_sizes(data)
