"""Inference speed in a real search: measured once per architecture and size, never overlapping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from rsearch.cache import JsonCache
from rsearch.rundir import SPEED_FILE
from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow

# Two trials at 16 px, then two at 24 px, two at a time: the pairs run side by side.
WARM = "[{data.image_size: 16, optim.lr: 0.05}, {data.image_size: 16, optim.lr: 0.08},\
 {data.image_size: 24, optim.lr: 0.05}, {data.image_size: 24, optim.lr: 0.08}]"
SPEED = ("infer_images_per_s", "infer_latency_ms", "infer_spread_pct")


@pytest.fixture
def empty_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty user cache for Ray's workers too (set before Ray starts: they inherit it)."""
    monkeypatch.setenv("RSEARCH_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"


def test_each_architecture_and_size_is_measured_once(
    empty_user_cache: Path, ray_2cpu: None, tmp_path: Path
) -> None:
    path = write_spec(tmp_path, algorithm="random", scheduler="{type: none}", epochs=1)
    size = "  data.image_size: {type: categorical, choices: [16, 24]}\n"
    path.write_text(path.read_text().replace("space:\n", "space:\n" + size))
    spec = load_spec(path, [f"search.warm_start={WARM}", "base.data.fraction=0.2"])
    info = run_search(spec, path, live=False)

    trials = load_study(info.run_dir, spec).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    by_size: dict[int, list[dict[str, float]]] = {}
    for t in trials:
        metrics = t.user_attrs["metrics"]
        by_size.setdefault(t.params["data.image_size"], []).append({k: metrics[k] for k in SPEED})
    # trials of one architecture and size report the very same numbers (CV 0)...
    assert all(a == b for a, b in by_size.values()), by_size
    # ... and each size has its own
    assert by_size[16][0]["infer_images_per_s"] != by_size[24][0]["infer_images_per_s"]

    # one measurement per size, kept in the run directory; the node lock kept them apart
    entries = list(JsonCache("run", info.run_dir / SPEED_FILE).read().values())
    assert len(entries) == 2
    first, second = sorted(entries, key=lambda e: e["started_at"])
    assert first["ended_at"] <= second["started_at"]
    # ... and in the user's cache, for the next search on this machine
    assert len(JsonCache("speed", empty_user_cache / "speed.json").read()) == 2
