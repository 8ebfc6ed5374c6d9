"""Starting the MLflow UI on a store, lean enough for a laptop, and the URL of a runs table."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from rsearch.errors import UserError
from rsearch.redact import redact_text
from rsearch.settings import resolve_tracking_uri, sqlite_path
from rsearch.tracking.runs import TAG_ROLE
from rsearch.tracking.store import ensure_store, http_limits

LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""`mlflow server` defaults start ~32 processes (4.5 GB, ~60 s); without the job runner and
with one worker it is one process of ~490 MB, up in ~10 s."""


def runs_url(base_url: str, experiment_id: str) -> str:
    """The UI page listing an experiment's runs (`#/experiments/<id>` alone shows no runs)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"


@dataclass
class UiServer:
    """A running MLflow UI: `process` is None when the store already is a server."""

    process: subprocess.Popen[bytes] | None
    url: str
    """The experiment's runs table: the one named, else the most recent search's (the UI's
    home page when the store holds no search)."""
    base_url: str
    log_path: Path | None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its worker processes."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def start_ui(
    tracking_uri: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    experiment: str | None = None,
    timeout: float = 120.0,
    log_path: Path | None = None,
) -> UiServer:
    """Start `mlflow server` on a database store and wait until it answers.

    Args:
        tracking_uri: The store; None resolves it like `resolve_tracking_uri` (default
            `sqlite:///<cwd>/mlflow.db`). An http(s) URI is a server already: nothing starts.
        host: Interface to listen on; 127.0.0.1 needs no extra security options.
        port: Port to listen on; 0 picks a free one.
        experiment: An experiment whose runs table `url` opens; None opens the experiment of
            the most recent search in the store.
        timeout: Seconds to wait for the server to answer.
        log_path: The server's output; default a new private file in the temp directory
            (`private_log`), named in `UiServer.log_path`.

    Raises:
        UserError: When the port is taken, the experiment does not exist, or the server does
            not come up.
    """
    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        # A server already: only its page is named (the latest search's, when it answers).
        return UiServer(None, _server_page(uri, experiment), uri, None)
    ensure_store(uri)
    port = port or _free_port(host)
    if not _port_free(host, port):
        raise _port_in_use(host, port)
    base_url = f"http://{host}:{port}"
    url = _page(uri, base_url, experiment)  # before starting: a wrong name starts nothing
    log_path = log_path or private_log(port)
    process = _launch(uri, host, port, log_path)
    server = UiServer(process, url, base_url, log_path)
    try:
        _wait_healthy(server, timeout, (host, port))
    except BaseException:
        server.stop()
        raise
    return server


def private_log(port: int) -> Path:
    """A new file for the server's output that only this user can read (mode 0600).

    Its name cannot be guessed: a fixed name in the shared temp directory could be a symlink
    another user planted (the server's output written wherever it points) or a file they read.
    """
    fd, name = tempfile.mkstemp(prefix=f"rsearch-mlflow-ui-{port}-", suffix=".log")
    os.close(fd)
    return Path(name)


def _port_in_use(host: str, port: int) -> UserError:
    return UserError(f"port {port} on {host} is in use; choose another port (0 picks a free one)")


def _server_command(uri: str, host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    command += ["--host", host, "--port", str(port), "--workers", "1"]
    db = sqlite_path(uri)
    if db is not None:
        # Artifacts of experiments made in the UI go beside the database, not into the cwd.
        command += ["--artifacts-destination", str(db.parent / "mlartifacts")]
    return command


def _launch(uri: str, host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        # A session of its own, so stop() can end the server's workers with it.
        return subprocess.Popen(
            _server_command(uri, host, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **LEAN_ENV},
            start_new_session=True,
        )


def _wait_healthy(server: UiServer, timeout: float, address: tuple[str, int]) -> None:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if not _port_free(*address):  # taken since it was checked
                raise _port_in_use(*address)
            raise UserError(f"the MLflow UI exited at start:\n{_tail(server.log_path)}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.3)
    raise UserError(f"the MLflow UI did not answer within {timeout:g} s:\n{_tail(server.log_path)}")


def _page(uri: str, base_url: str, experiment: str | None) -> str:
    client = MlflowClient(tracking_uri=uri)
    if experiment is None:
        latest = _latest_search_experiment(client)
        return base_url if latest is None else runs_url(base_url, latest)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UserError(f"no MLflow experiment named {experiment!r} in {redact_text(uri)}")
    return runs_url(base_url, found.experiment_id)


def _server_page(uri: str, experiment: str | None) -> str:
    from mlflow.exceptions import MlflowException

    with http_limits():
        try:
            return _page(uri, uri, experiment)
        except (MlflowException, OSError) as e:
            if experiment is None:
                return uri  # not answering now: its home page will do
            raise UserError(
                f"cannot look up experiment {experiment!r}: the MLflow server at "
                f"{redact_text(uri)} does not answer ({type(e).__name__})"
            ) from None


def _latest_search_experiment(client: MlflowClient) -> str | None:
    """The experiment id of the search whose parent run started last, None without one."""
    ids = [e.experiment_id for e in client.search_experiments(max_results=50_000)]
    if not ids:
        return None
    runs = client.search_runs(
        ids,
        f"tags.`{TAG_ROLE}` = 'search'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return str(runs[0].info.experiment_id) if runs else None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    """Whether the server could bind the port: nothing listens on it, nor holds it bound.

    Raises:
        UserError: When the host cannot be listened on at all (not an address of this machine).
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as sock:
            # As the server's socket does: a port left in TIME_WAIT by a stopped server is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return False
        raise UserError(f"cannot listen on {host} port {port}: {e.strerror or e}") from None
    return True


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
