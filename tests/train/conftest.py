"""Fixtures of the training-core tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rsearch.spec import Recipe
from tests.train.train_helpers import TINY, RecipeFactory, merge, write_image_folder


@pytest.fixture
def make_recipe() -> RecipeFactory:
    """Build a tiny recipe, overriding sections: make_recipe(optim={"name": "lamb"})."""

    def make(**overrides: Any) -> Recipe:
        return Recipe.model_validate(merge(TINY, overrides))

    return make


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A 3-class image folder with 4 train and 4 val PNGs a class."""
    return write_image_folder(tmp_path / "folder")


@pytest.fixture(autouse=True)
def quick_speed_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time inference for 0.05 s instead of 1 s at the end of every fit (tests check keys)."""
    monkeypatch.setattr("rsearch.train.measure.MEASURE_SECONDS", 0.05)


@pytest.fixture(autouse=True)
def own_speed_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Each test's own speed cache and node lock: no numbers from another test, and no pause
    for a measurement of another process of this user (another test run on the machine).
    Outside tmp_path, which tests use as a checkpoint directory."""
    root = tmp_path_factory.mktemp("speed")
    monkeypatch.setenv("RSEARCH_CACHE", str(root / "rsearch-cache"))
    node = root / "node"
    monkeypatch.setattr("rsearch.train.speed.node_dir", lambda: node)
    return node
