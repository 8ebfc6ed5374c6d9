"""A real search whose objective is an extra evaluation split's accuracy (rotated_top1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.report import write_report
from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.train.ood_helpers import write_rotated_digits
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow


def test_a_rotated_split_is_the_objective_of_a_search(ray_2cpu: None, tmp_path: Path) -> None:
    rotated = write_rotated_digits(tmp_path / "rotated", per_class=3)
    path = write_spec(
        tmp_path,
        name="ood",
        objective="{metric: rotated_top1}",
        algorithm="random",
        trials=2,
        epochs=1,
        scheduler="{type: none}",
    )
    data = "  data: {dataset: digits, image_size: 16, batch_size: 64, fraction: 0.5}\n"
    splits = f"{data.rstrip()[:-1]}, eval_splits: {{rotated: {rotated}}}}}\n"
    path.write_text(path.read_text().replace(data, splits))
    info = run_search(load_spec(path), path, live=False)
    assert not info.errors

    trials = load_study(info.run_dir).trials
    assert len(trials) == 2
    for trial in trials:
        assert trial.state.name == "COMPLETE"
        value = trial.values[0]
        hits = value * 30 / 100  # 30 rotated images: a whole number of them right
        assert hits == pytest.approx(round(hits))
    text = write_report(info.run_dir, fmt="md").page.read_text()
    assert "## In- vs out-of-distribution accuracy" in text
    assert "rotated top-1 (%)" in text and "ood_accuracy.png" in text
