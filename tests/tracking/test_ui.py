"""The MLflow UI of start_ui and `rsearch ui`: ports, signals, a real headless Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from tempfile import gettempdir

import pytest
from mlflow import MlflowClient

from rsearch.errors import UserError
from rsearch.spec import parse_spec_text
from rsearch.tracking import SearchRecorder, UiServer, runs_url, start_ui
from rsearch.tracking.spec_params import resolved_spec, search_settings
from tests.tracking.conftest import SPEC, make_trial

CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium renders the MLflow UI headless only with a virtual time budget (without
# it the page stays a grey skeleton).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=10000",
]
TRIALS = ("trial_aaa11_00000", "trial_bbb22_00001")


def test_runs_url_opens_the_runs_table_of_an_experiment() -> None:
    assert runs_url("http://127.0.0.1:5000/", "7") == "http://127.0.0.1:5000/#/experiments/7/runs"


def test_a_taken_port_is_refused_before_anything_starts(store: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port}"):
            start_ui(store, port=port)


def test_a_port_held_bound_without_listening_is_in_use(store: str) -> None:
    with socket.socket() as taken:  # what a server still starting up holds
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use"):
            start_ui(store, port=port)


def test_a_host_that_is_no_address_here_is_refused(store: str) -> None:
    with pytest.raises(UserError, match="cannot listen on 192.0.2.1 port 5000"):
        start_ui(store, host="192.0.2.1", port=5000)


def _rsearch_ui(*args: str) -> subprocess.Popen[str]:
    # A session of its own, as a terminal's job would be: the test signals it alone.
    return subprocess.Popen(
        [sys.executable, "-m", "rsearch.cli", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def test_rsearch_ui_on_a_busy_port_exits_2_naming_the_port(store: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _rsearch_ui("--port", str(port), "--tracking-uri", store)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert (
        err.strip()
        == f"error: port {port} on 127.0.0.1 is in use; choose another port (0 picks a free one)"
    )
    assert "MLflow UI" not in out


def test_rsearch_ui_run_in_process_leaves_the_callers_signal_handlers(store: str) -> None:
    from typer.testing import CliRunner

    from rsearch.cli import app

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        res = CliRunner().invoke(app, ["ui", "--tracking-uri", store, "--port", str(port)])
    assert res.exit_code == 2, res.output
    assert {sig: signal.getsignal(sig) for sig in before} == before


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    """The URL `rsearch ui` prints once its server answers."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("MLflow UI: "):
                return line.split(": ", 1)[1].strip()
            assert line, f"rsearch ui ended: {proc.stderr.read() if proc.stderr else ''}"
    raise AssertionError(f"rsearch ui printed no URL within {timeout:g} s")


def _groups_of(marker: str) -> set[int]:
    """Process groups of the live processes whose command line contains marker."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
    return groups


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


# Each case starts a real MLflow server (~10 s idle): SIGTERM, the reported case, stays in the
# fast suite; the others run with the slow tests.
@pytest.mark.parametrize(
    ("stop", "exit_code"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM),
        pytest.param(signal.SIGINT, 0, marks=pytest.mark.slow),
        pytest.param(signal.SIGHUP, 128 + signal.SIGHUP, marks=pytest.mark.slow),
    ],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_a_signal_to_rsearch_ui_stops_its_server_and_frees_the_port(
    ram_dir: Path, stop: signal.Signals, exit_code: int
) -> None:
    db = ram_dir / f"ui-{stop.name}" / "mlflow.db"
    proc = _rsearch_ui("--port", "0", "--tracking-uri", f"sqlite:///{db}")
    groups = {proc.pid}
    stopped = False
    try:
        url = _read_url(proc, timeout=180)
        # The server runs in a session of its own (Ctrl-C in a terminal reaches rsearch only).
        groups |= _groups_of(str(db))
        assert len(groups) >= 2, "the server's process group was not found"
        proc.send_signal(stop)
        proc.wait(timeout=60)
        assert proc.returncode == exit_code
        left = [g for g in groups if not _group_gone(g, timeout=10)]
        assert not left, f"process groups still alive: {left}"
        stopped = True
        port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        with socket.socket() as again:  # the next `rsearch ui` can have the port
            # As servers do: a connection the test made may leave the port in TIME_WAIT, which
            # only a listener still alive (what this checks) should make the bind fail.
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
        assert proc.stderr is not None
        logs = [ln for ln in proc.stderr.read().splitlines() if ln.startswith("server log: ")]
        log = Path(logs[0].split(": ", 1)[1])
        # A file of its own, readable by this user only, not a fixed name in /tmp.
        assert log.name != f"rsearch-mlflow-ui-{port}.log" and log.parent == Path(gettempdir())
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        log.unlink()
    finally:
        if not stopped:  # whatever failed, leave no server behind
            for group in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
        proc.wait()


def test_an_unknown_experiment_is_refused_before_anything_starts(store: str) -> None:
    with pytest.raises(UserError, match="no MLflow experiment named 'nope'"):
        start_ui(store, port=0, experiment="nope")


def test_a_tracking_server_is_not_started_again() -> None:
    ui = start_ui("http://127.0.0.1:5999")
    assert ui.process is None and ui.url == "http://127.0.0.1:5999"


@dataclass
class Shown:
    """The UI and the search it shows."""

    server: UiServer
    experiment_id: str
    parent_id: str
    parent_name: str
    best_child_id: str


@pytest.fixture(scope="module")
def shown(ram_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shown]:
    """The UI (start_ui) on a store holding one search: a parent and 2 children."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    spec = parse_spec_text(SPEC)
    tmp = tmp_path_factory.mktemp("ui")
    store = f"sqlite:///{ram_dir / 'ui' / 'mlflow.db'}"
    rec = SearchRecorder(store, "ui-test", tmp / "run" / "mlflow", flush_interval=0.0)
    rec.start_search(tmp / "run", spec.name, search_settings(spec), resolved_spec(spec))
    for trial_id in TRIALS:
        t = make_trial(spec, trial_id, 0.1, 0.0, 2)
        rec.trial_started(trial_id, t.recipe, t.searched)
        for row in t.epochs:
            rec.trial_result(trial_id, row, step=row["epoch"])
        rec.trial_ended(trial_id, "FINISHED", t.epochs[-1])
    assert rec.end_search([TRIALS[0]], {"val_top1": 0.8})
    assert rec.parent_run_id is not None and rec.experiment_id is not None
    parent = MlflowClient(store).get_run(rec.parent_run_id)
    server = start_ui(store, port=0, experiment="ui-test", log_path=tmp / "ui.log")
    try:
        yield Shown(
            server,
            rec.experiment_id,
            rec.parent_run_id,
            parent.info.run_name,
            parent.data.tags["rsearch.best_run_id"],
        )
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


@pytest.mark.browser
def test_the_runs_table_lists_the_search(shown: Shown) -> None:
    assert shown.server.url == runs_url(shown.server.base_url, shown.experiment_id)
    dom = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, "--dump-dom", shown.server.url],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    assert shown.parent_name in dom
    assert "<strong>3</strong> matching runs" in dom  # the parent and its two children
    # Children are folded under their parent until its row is expanded (next test).
    assert TRIALS[0] not in dom


@pytest.mark.browser
def test_expanding_the_search_shows_its_trials_and_the_best_is_linked(shown: Shown) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(shown.server.url)
            page.get_by_text(shown.parent_name).first.wait_for(timeout=60_000)
            assert page.get_by_text(TRIALS[0]).count() == 0
            # The expander is the button in the parent's run-name cell.
            page.locator('[col-id="attributes.`Run Name`"] button').first.click()
            for trial_id in TRIALS:
                page.get_by_text(trial_id).first.wait_for(timeout=30_000)

            # The parent's description (Markdown) links to the best trial's run.
            page.goto(f"{shown.server.url}/{shown.parent_id}")
            page.get_by_text("Best trial:").first.wait_for(timeout=60_000)
            best_run = re.compile(f"/runs/{shown.best_child_id}$")
            # A click while the page is still rendering the description can be lost (seen on
            # CI once), so click again until the URL moves; the URL must still be the best's.
            for attempt in range(3):
                page.get_by_role("link", name=TRIALS[0]).last.click()
                try:
                    # A change of the URL's fragment fires no load event: poll the URL instead.
                    sync_api.expect(page).to_have_url(best_run, timeout=15_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
        finally:
            browser.close()
