"""`rsearch train`: a recipe file trains in-process; bad input is one message and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import QUICKSTART, fails_cleanly, invoke

TINY = """\
model: {name: test_resnet}
data: {dataset: digits, image_size: 16, batch_size: 64, fraction: 0.3}
augment: {random_resized_crop: false, hflip: 0.0}
epochs: 1
"""


@pytest.fixture(autouse=True)
def quick_speed_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time inference for 0.05 s instead of 1 s at the end of the fit (the test checks keys)."""
    monkeypatch.setattr("rsearch.train.measure.MEASURE_SECONDS", 0.05)


def _recipe(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_train_writes_metrics(tmp_path: Path) -> None:
    metrics = tmp_path / "out" / "m.json"
    res = invoke(
        "train", _recipe(tmp_path), "--no-progress", "--metrics", metrics, "--set", "seed=3"
    )
    assert res.exit_code == 0, res.output
    assert f"metrics written to {metrics}" in res.stderr
    written = json.loads(metrics.read_text())
    assert written["recipe"]["seed"] == 3  # the override reached the recipe trained
    assert [epoch["epoch"] for epoch in written["history"]] == [1]
    assert 0.0 <= written["final"]["val_top1"] <= 100.0
    assert "val_top1" in res.stdout  # the summary table


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("dataset: digits", "dataset: image_folder, path: /nonexistent/folder"), "does not exist"),
        (("test_resnet", "resnet181"), "did you mean 'resnet18'"),
        (("epochs: 1", "epochz: 1"), "recipe.yaml:4:1: epochz: unknown key 'epochz'"),
    ],
    ids=["missing data path", "unknown model", "unknown key"],
)
def test_train_bad_recipe(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    path = _recipe(tmp_path, TINY.replace(*change))
    fails_cleanly("train", path, "--no-progress", expect=fragment)


def test_train_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = _recipe(tmp_path, TINY.replace("test_resnet", "resnet181") + "optim: {lr: 0}\n")
    err = fails_cleanly("train", path, expect=f"error: {path}:1:9: model.name:", lines=2)
    assert f"{path}:5:9: optim.lr: Input should be greater than 0" in err


def test_train_refuses_a_search_spec() -> None:
    fails_cleanly("train", QUICKSTART, expect="a search spec, not a recipe")


def test_train_missing_file(tmp_path: Path) -> None:
    fails_cleanly("train", tmp_path / "none.yaml", expect="none.yaml:1:1: <top level>: file not")


def test_train_bad_override(tmp_path: Path) -> None:
    fails_cleanly(
        "train", _recipe(tmp_path), "--set", "data.image_size=2", expect="data.image_size: Input"
    )
