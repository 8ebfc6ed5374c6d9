"""Where the timm-name cache lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec.names import cache_dir


def test_rsearch_cache_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RSEARCH_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize("unset", ["", None])
def test_xdg_cache_home_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unset: str | None
) -> None:
    if unset is None:
        monkeypatch.delenv("RSEARCH_CACHE", raising=False)
    else:  # an empty value means unset, not the working directory
        monkeypatch.setenv("RSEARCH_CACHE", unset)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rsearch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "rsearch"
