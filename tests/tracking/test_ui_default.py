"""`rsearch ui` without `-e` opens the runs table of the most recent search in the store."""

from __future__ import annotations

import time
from pathlib import Path

from rsearch.tracking import SearchRecorder
from rsearch.tracking.ui import _page, runs_url


def _search(uri: str, experiment: str, run_dir: Path, state: Path) -> str:
    recorder = SearchRecorder(uri, experiment, state)
    recorder.start_search(run_dir, experiment, {}, {"name": experiment})
    assert recorder.flush()
    assert recorder.experiment_id is not None
    return recorder.experiment_id


def test_the_latest_search_is_opened(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = "http://127.0.0.1:5000"
    first = _search(uri, "older", tmp_path / "run-a", tmp_path / "state-a")
    time.sleep(0.05)  # start times in ms: the second search starts strictly later
    second = _search(uri, "newer", tmp_path / "run-b", tmp_path / "state-b")
    assert first != second
    assert _page(uri, base, None) == runs_url(base, second)
    assert _page(uri, base, "older") == runs_url(base, first)


def test_a_store_without_searches_opens_the_home_page(tmp_path: Path) -> None:
    from rsearch.tracking import ensure_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    assert _page(uri, "http://127.0.0.1:5000", None) == "http://127.0.0.1:5000"
