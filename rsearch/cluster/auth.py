"""The Ray auth token a command sends, and where it came from (never the token itself)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rsearch.errors import UserError

TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path(".ray") / "auth_token"
HOW_TO_SUPPLY = (
    "pass --token TOKEN or --token-file FILE, or set $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH "
    "(the head node's token is in its ~/.ray/auth_token unless it was started with "
    "$RAY_AUTH_TOKEN)"
)


@dataclass(frozen=True)
class Token:
    """A token and a description of its source, safe to show in messages."""

    value: str = field(repr=False)
    source: str

    def headers(self) -> dict[str, str]:
        """The HTTP header Ray's dashboard checks."""
        return {"Authorization": f"Bearer {self.value}"}


def resolve_token(
    token: str | None = None,
    token_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Token | None:
    """The token to send: --token, --token-file, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray.

    None when no source holds one (a cluster without auth needs none).

    Raises:
        UserError: When both flags are given, or a named token file is missing or empty.
    """
    env = os.environ if env is None else env
    if token is not None and token_file is not None:
        raise UserError("give --token or --token-file, not both")
    if token is not None:
        if not token.strip():
            raise UserError("--token is empty")
        return Token(token.strip(), "--token")
    if token_file is not None:
        return _read_token_file(token_file, "--token-file")
    if env.get(TOKEN_ENV, "").strip():
        return Token(env[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
    if env.get(TOKEN_PATH_ENV):
        return _read_token_file(Path(env[TOKEN_PATH_ENV]), f"${TOKEN_PATH_ENV}")
    default = (home or Path.home()) / DEFAULT_TOKEN_FILE
    if default.is_file():
        return _read_token_file(default, f"~/{DEFAULT_TOKEN_FILE}")
    return None


def _read_token_file(path: Path, named_by: str) -> Token:
    path = path.expanduser()
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise UserError(f"token file {path} (from {named_by}) does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read token file {path} (from {named_by}): {e}") from None
    if not value:
        raise UserError(f"token file {path} (from {named_by}) is empty")
    return Token(value, f"{named_by} ({path})")
