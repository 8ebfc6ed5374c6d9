"""Which token a command sends: flags first, then Ray's environment variables, then ~/.ray."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from rsearch.cluster.auth import resolve_token
from rsearch.errors import UserError


@dataclass
class Sources:
    home: Path
    env: dict[str, str]
    file: Path


@pytest.fixture
def sources(tmp_path: Path) -> Sources:
    """A different token in every place resolve_token looks."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "flag.tok").write_text("from-flag-file\n")
    (tmp_path / "env.tok").write_text("from-env-path\n")
    env = {"RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "env.tok")}
    return Sources(home, env, tmp_path / "flag.tok")


def _value(token: str | None, file: Path | None, s: Sources) -> str | None:
    tok = resolve_token(token, file, s.env, s.home)
    return tok.value if tok else None


def test_order_flag_file_env_env_path_home(sources: Sources) -> None:
    assert _value("from-flag", None, sources) == "from-flag"
    assert _value(None, sources.file, sources) == "from-flag-file"
    assert _value(None, None, sources) == "from-env"
    del sources.env["RAY_AUTH_TOKEN"]
    assert _value(None, None, sources) == "from-env-path"
    del sources.env["RAY_AUTH_TOKEN_PATH"]
    assert _value(None, None, sources) == "from-home"
    (sources.home / ".ray" / "auth_token").unlink()
    assert _value(None, None, sources) is None


def test_sources_are_named_without_the_token(sources: Sources) -> None:
    tok = resolve_token(None, None, sources.env, sources.home)
    assert tok is not None and tok.source == "$RAY_AUTH_TOKEN"
    tok = resolve_token(None, sources.file, sources.env, sources.home)
    assert tok is not None and tok.source == f"--token-file ({sources.file})"


def test_missing_token_file_names_it_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"token file .*nope.tok \(from --token-file\) does not"):
        resolve_token(None, tmp_path / "nope.tok", {}, tmp_path)
    with pytest.raises(UserError, match=r"from \$RAY_AUTH_TOKEN_PATH"):
        resolve_token(None, None, {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "x")}, tmp_path)


def test_empty_file_and_both_flags_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        resolve_token(None, tmp_path / "empty", {}, tmp_path)
    with pytest.raises(UserError, match="not both"):
        resolve_token("t", tmp_path / "empty", {}, tmp_path)


def test_token_never_in_repr_and_header_is_bearer(tmp_path: Path) -> None:
    tok = resolve_token("s3cr3t", None, {}, tmp_path)
    assert tok is not None
    assert "s3cr3t" not in repr(tok) and "s3cr3t" not in tok.source
    assert tok.headers() == {"Authorization": "Bearer s3cr3t"}
