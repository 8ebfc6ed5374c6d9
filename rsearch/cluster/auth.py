"""The Ray auth token a command sends, and where it came from (never the token itself).

Where a token may go: `--token-file`, `$RAY_AUTH_TOKEN` and `$RAY_AUTH_TOKEN_PATH` are sent to
the address they were given for. `~/.ray/auth_token` is this machine's own Ray token (Ray
writes it for the clusters it starts here), so it is sent only to a head on this machine.
A token file the user names must be private to its owner, as ssh demands of a private key.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rsearch.cluster.address import (
    DashboardAddress,
    HostScope,
    host_scope,
    is_remote_ray_address,
)
from rsearch.errors import UserError

TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path(".ray") / "auth_token"
ALLOW_HTTP_ENV = "RSEARCH_ALLOW_HTTP_TOKEN"
"""Set to 1 to send a token over plain http to a public address anyway (--allow-http-token)."""
HOW_TO_SUPPLY = (
    "pass --token-file FILE, or set $RAY_AUTH_TOKEN_PATH or $RAY_AUTH_TOKEN "
    "(the head node's token is in its ~/.ray/auth_token unless it was started with "
    "$RAY_AUTH_TOKEN)"
)
HOME_TOKEN_IS_LOCAL = (
    f"~/{DEFAULT_TOKEN_FILE} is this machine's own Ray token and is sent only to a head on "
    "this machine (localhost, 127.0.0.1, ::1)"
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
    local_head: bool = True,
) -> Token | None:
    """The token to send: --token, --token-file, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray.

    None when no source holds one (a cluster without auth needs none).

    Args:
        token: The --token value (discouraged: it lands in shell history and `ps`).
        token_file: The --token-file value.
        env: The environment to read (default: os.environ).
        home: The home directory holding .ray/auth_token (default: the user's).
        local_head: Whether the cluster is on this machine; ~/.ray/auth_token is read only then.

    Raises:
        UserError: When both flags are given, or a named token file is missing, empty or
            readable by other users.
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
    default = home_token_file(home)
    if local_head and default.is_file():
        return _read_token_file(default, f"~/{DEFAULT_TOKEN_FILE}", strict=False)
    return None


def check_transport(
    address: DashboardAddress,
    token: Token | None,
    allow_http: bool = False,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Whether the token may travel to address; returns a warning to print, if any.

    https, or http to this machine (a local head, an ssh tunnel, `kubectl port-forward`,
    `ray dashboard`): silent. http to a private network address: the token crosses that
    network in clear text, so a warning. http to any other address: refused unless allowed
    by --allow-http-token or $RSEARCH_ALLOW_HTTP_TOKEN=1, and then a warning; whoever can
    read the traffic on the way could run code on the cluster with the token.

    Raises:
        UserError: For a token over http to a public address without the opt-in.
    """
    env = os.environ if env is None else env
    if token is None or address.url.startswith("https://"):
        return None
    scope = host_scope(address.host)
    if scope is HostScope.LOOPBACK:
        return None
    risk = (
        f"Ray auth token (from {token.source}) to {address.host} over plain http, where "
        "anyone on the network path can read it"
    )
    fix = (
        "use an https address, or a tunnel to this machine (ssh -L 8265:localhost:8265 HEAD, "
        "kubectl port-forward, ray dashboard) and --address http://127.0.0.1:8265"
    )
    allowed = allow_http or env.get(ALLOW_HTTP_ENV, "") not in ("", "0")
    if scope is HostScope.PUBLIC and not allowed:
        raise UserError(f"refusing to send the {risk}; {fix} (--allow-http-token sends it anyway)")
    return f"warning: sending the {risk}; {fix}"


def refuse_home_token_for_remote(
    address: str | None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> None:
    """Stop `ray.init` from sending this machine's ~/.ray/auth_token to another machine.

    Ray itself reads $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token when it
    joins a cluster; for a remote address the token must be named explicitly.

    Raises:
        UserError: When address is another machine, no token is named and the home file exists.
    """
    env = os.environ if env is None else env
    if not is_remote_ray_address(address):
        return
    if env.get(TOKEN_ENV, "").strip() or env.get(TOKEN_PATH_ENV):
        return
    if env.get("RAY_AUTH_MODE", "").lower() == "disabled" or not home_token_file(home).is_file():
        return  # Ray sends no token then
    raise UserError(
        f"--address {address} is another machine, and Ray would send it this machine's own "
        f"token; {HOME_TOKEN_IS_LOCAL}. Set $RAY_AUTH_TOKEN_PATH to that cluster's token file "
        "(or $RAY_AUTH_TOKEN), or RAY_AUTH_MODE=disabled for a cluster without token auth"
    )


def home_token_file(home: Path | None = None) -> Path:
    """Where Ray keeps this machine's own token."""
    return (home or Path.home()) / DEFAULT_TOKEN_FILE


def _read_token_file(path: Path, named_by: str, strict: bool = True) -> Token:
    """The token in path; a file others can read is refused (strict) or warned about."""
    path = path.expanduser()
    try:
        mode = path.stat().st_mode
        value = path.read_text().strip()
    except FileNotFoundError:
        raise UserError(f"token file {path} (from {named_by}) does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read token file {path} (from {named_by}): {e}") from None
    loose = _loose_permissions(path, mode)
    if loose and strict:
        raise UserError(f"token file {path} (from {named_by}) {loose}")
    if loose:
        # Ray writes ~/.ray/auth_token with the process umask (0644 by default): refusing it
        # would break every head started here, so this one only warns.
        print(f"warning: token file {path} {loose}", file=sys.stderr)
    if not value:
        raise UserError(f"token file {path} (from {named_by}) is empty")
    return Token(value, f"{named_by} ({path})")


def _loose_permissions(path: Path, mode: int) -> str | None:
    """Why path's mode is too open for a secret, with the fix; None when it is private."""
    if not stat.S_ISREG(mode) or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"is open to other users (mode {stat.S_IMODE(mode):04o}); "
        f"make it private to you: chmod 600 {path}"
    )
