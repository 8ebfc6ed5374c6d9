"""`rsearch ui`: the MLflow UI on the search store; a taken port or an unknown experiment is
one message and exit 2, before any server starts.

Starting a real UI server and looking at its pages in a browser is tests/tracking/test_ui.py.
"""

from __future__ import annotations

import socket
import time

import pytest

from rsearch.tracking.store import ensure_store
from tests.cli.helpers import fails_cleanly, invoke
from tests.cluster.helpers import closed_port


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store made once for the module: creating one takes seconds, and MLflow logs
    its migrations to stderr, which would add lines to the verb's own."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'mlflow.db'}"
    ensure_store(uri)
    return uri


def test_tracking_server_is_shown_not_started() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    res = invoke("ui", "--tracking-uri", url)
    assert res.exit_code == 0, res.output
    assert res.stdout == f"MLflow UI: {url}\n"  # its home page: it does not answer now
    assert "Ctrl-C" not in res.stderr  # nothing was started, so nothing to stop
    assert time.monotonic() - start < 30


def test_port_in_use_names_the_port(store: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fails_cleanly(
            "ui",
            "--tracking-uri",
            store,
            "--port",
            str(port),
            expect=f"error: port {port} on 127.0.0.1 is in use; choose another port",
        )


def test_unknown_experiment(store: str) -> None:
    fails_cleanly(
        "ui",
        "--tracking-uri",
        store,
        "--port",
        "0",
        "--experiment",
        "nope",
        expect=f"error: no MLflow experiment named 'nope' in {store}",
    )
