"""Where the token travels, against real HTTP servers on this machine.

Each server is a real `http.server` on a free port, standing in for a Ray dashboard (only
/api/version and /api/jobs/ are answered, which is all the Jobs client asks before listing).
Two ports on 127.0.0.1 are two origins, as a browser or `requests` counts them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.cluster.address import dashboard_address
from rsearch.cluster.auth import Token
from rsearch.cluster.jobs import Jobs
from tests.cluster.helpers import forget_this_machines_ray

SECRET = "s3cr3t-token-0123456789"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@dataclass
class Seen:
    """What one server was asked: (path, Authorization header or None) per request."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def tokens(self) -> list[str | None]:
        return [auth for _, auth in self.requests]


@dataclass
class Server:
    url: str
    seen: Seen


def _handler(seen: Seen, redirect_to: str | None, require: str | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            auth = self.headers.get("Authorization")
            seen.requests.append((self.path, auth))
            if redirect_to is not None:
                self.send_response(307)
                self.send_header("Location", redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if require is not None and auth != f"Bearer {require}":
                self._send(401 if auth is None else 403, {"error": "auth"})
            elif self.path == "/api/version":
                self._send(200, {"ray_version": "2.60.0", "version": "4"})
            elif self.path.startswith("/api/jobs"):
                self._send(200, [])
            else:
                self._send(404, {})

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    return Handler


@contextmanager
def _server(
    host: str = "127.0.0.1", redirect_to: str | None = None, require: str | None = None
) -> Iterator[Server]:
    seen = Seen()
    httpd = ThreadingHTTPServer((host, 0), _handler(seen, redirect_to, require))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://{host}:{httpd.server_address[1]}", seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_to_another_origin_never_carries_the_token() -> None:
    token = Token(SECRET, "--token-file (t)")
    with _server() as second, _server(redirect_to=second.url) as first:
        jobs = Jobs(dashboard_address(first.url, {}), token)
        assert jobs.list() == []
    # The first server got the token on every call; each was sent on to the second.
    assert first.seen.tokens() and set(first.seen.tokens()) == {f"Bearer {SECRET}"}
    paths = [path for path, _ in second.seen.requests]
    assert paths.count("/api/version") >= 2 and "/api/jobs/" in paths  # urllib + requests
    assert second.seen.tokens() == [None] * len(paths)


def test_a_redirect_within_the_origin_keeps_the_token() -> None:
    """Dropping it on every redirect would turn a dashboard's own redirect into a 401."""
    with _same_origin_redirect() as server:
        jobs = Jobs(dashboard_address(server.url, {}), Token(SECRET, "t"))
        assert jobs.list() == []
    paths = [path for path, _ in server.seen.requests]
    assert paths.count("/api/version?moved") >= 2  # urllib and requests followed it
    assert server.seen.tokens() == [f"Bearer {SECRET}"] * len(paths)


@contextmanager
def _same_origin_redirect() -> Iterator[Server]:
    """A dashboard that redirects /api/version once to /api/version?moved (same origin)."""
    seen = Seen()
    base = _handler(seen, None, SECRET)

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/api/version":
                seen.requests.append((self.path, self.headers.get("Authorization")))
                self.send_response(307)
                self.send_header("Location", "/api/version?moved")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/api/version?moved":
                seen.requests.append((self.path, self.headers.get("Authorization")))
                self._send(200, {"ray_version": "2.60.0", "version": "4"})
                return
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _this_machines_lan_address() -> str | None:
    """An address of this machine that is not loopback, when it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.fixture
def lan_host() -> str:
    address = _this_machines_lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


@pytest.fixture
def home_with_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HOME holds ~/.ray/auth_token (this machine's token); no Ray variable is set."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(SECRET)
    (home / ".ray" / "auth_token").chmod(0o600)
    forget_this_machines_ray(monkeypatch, home)
    return home


def test_home_token_goes_to_a_local_head(home_with_token: Path) -> None:
    with _server(require=SECRET) as head:
        res = runner.invoke(app, ["jobs", "--address", head.url])
    assert res.exit_code == 0, res.output + res.stderr
    assert head.seen.tokens()[0] == f"Bearer {SECRET}"


def test_home_token_never_goes_to_another_machine_and_the_401_says_why(
    home_with_token: Path, lan_host: str
) -> None:
    with _server(host=lan_host, require=SECRET) as head:
        res = runner.invoke(app, ["jobs", "--address", head.url])
    assert res.exit_code == 2
    assert head.seen.tokens() == [None]
    assert "requires an auth token (HTTP 401)" in res.stderr
    assert "sent only to a head on this machine" in res.stderr
    assert f"for {lan_host} name its token explicitly" in res.stderr
    assert SECRET not in res.output + res.stderr


def test_rays_own_client_adds_no_home_token_either(home_with_token: Path, lan_host: str) -> None:
    """With $RAY_AUTH_MODE=token, Ray's Jobs client loads a token itself unless told one.

    A separate process: Ray reads the mode once per process.
    """
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(REPO)}
    with _server(host=lan_host) as open_cluster:
        result = subprocess.run(
            [sys.executable, "-m", "rsearch.cli", "jobs", "--address", open_cluster.url],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert open_cluster.seen.requests, "the client asked nothing"
    assert set(open_cluster.seen.tokens()) <= {None, ""}


def test_a_named_token_over_lan_http_works_with_a_loud_warning(
    home_with_token: Path, lan_host: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "cluster.tok"
    token_file.write_text(SECRET)
    token_file.chmod(0o600)
    with _server(host=lan_host, require=SECRET) as head:
        res = runner.invoke(app, ["jobs", "--address", head.url, "--token-file", str(token_file)])
    assert res.exit_code == 0, res.output + res.stderr
    warning = (
        f"warning: sending the Ray auth token (from --token-file ({token_file})) to {lan_host}"
    )
    assert warning in res.stderr and "over plain http" in res.stderr and "ssh -L" in res.stderr
    assert SECRET not in res.stderr


def test_an_open_token_file_is_refused_before_anything_is_sent(
    home_with_token: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "cluster.tok"
    token_file.write_text(SECRET)
    token_file.chmod(0o644)
    with _server(require=SECRET) as head:
        res = runner.invoke(app, ["jobs", "--address", head.url, "--token-file", str(token_file)])
    assert res.exit_code == 2
    assert f"chmod 600 {token_file}" in res.stderr
    assert head.seen.requests == []


def test_ray_init_on_another_machine_is_refused_the_home_token(
    home_with_token: Path, tmp_path: Path
) -> None:
    res = runner.invoke(app, ["resume", str(tmp_path), "--address", "10.0.0.5:6379"])
    assert res.exit_code == 2
    assert "is another machine" in res.stderr and "$RAY_AUTH_TOKEN_PATH" in res.stderr
