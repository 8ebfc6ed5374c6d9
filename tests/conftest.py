"""Suite-wide settings: nothing a test does may write to the checkout or the user's stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point MLflow's default store and rsearch's name cache at a temporary directory."""
    root: Path = tmp_path_factory.mktemp("stores")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI",)}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
