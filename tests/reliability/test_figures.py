"""The figures recorder and the table docs/reliability.md is rendered from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.reliability.figures import FIGURES_ENV, FULL_ENV, full_size, record

TABLE_SCRIPT = Path(__file__).parents[2] / "benchmarks" / "reliability_table.py"


def _table_module():
    spec = importlib.util.spec_from_file_location("reliability_table", TABLE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_record_is_silent_without_a_target(monkeypatch, tmp_path):
    monkeypatch.delenv(FIGURES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record("case", "done", 1, "nothing", wall_s=1.0)
    assert list(tmp_path.iterdir()) == []


def test_table_keeps_the_latest_row_per_case(monkeypatch, tmp_path):
    target = tmp_path / "figures.jsonl"
    monkeypatch.setenv(FIGURES_ENV, str(target))
    record("driver killed", "SIGKILL then resume", 5, "one epoch", wall_s=100.0)
    record("mlflow down", "server stopped 30 s", 1, "nothing")
    record("driver killed", "SIGKILL then resume", 6, "nothing", wall_s=90.123456)

    module = _table_module()
    lines = module.table(module.latest_rows(target)).splitlines()

    assert lines[0] == "| case | what was done | times | lost | measured |"
    assert lines[2] == "| driver killed | SIGKILL then resume | 6 | nothing | wall s 90.1 |"
    assert lines[3] == "| mlflow down | server stopped 30 s | 1 | nothing |  |"
    assert len(lines) == 4


def test_table_escapes_pipes(monkeypatch, tmp_path):
    target = tmp_path / "figures.jsonl"
    monkeypatch.setenv(FIGURES_ENV, str(target))
    record("a|b", "x", 1, "nothing")
    module = _table_module()
    assert "a\\|b" in module.table(module.latest_rows(target))


def test_full_size_only_when_asked(monkeypatch):
    monkeypatch.delenv(FULL_ENV, raising=False)
    assert not full_size()
    monkeypatch.setenv(FULL_ENV, "0")
    assert not full_size()
    monkeypatch.setenv(FULL_ENV, "1")
    assert full_size()
