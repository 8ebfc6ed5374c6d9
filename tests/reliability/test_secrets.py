"""A real search with credentials in its tracking and storage URIs leaks them nowhere.

The MLflow store is a real `mlflow server` on 127.0.0.1 (it has no auth, so it ignores the
basic-auth credential the client sends from the URI's user info); the storage is a real S3
protocol server (moto) reached with an access key in the URI's user info, the form pyarrow
takes credentials in (it refuses secret query parameters). Everything a user or a cluster
could read afterwards is searched for the two passwords: every file of the run directory, the
console output of `rsearch run` and `rsearch resume`, what `rsearch submit` would send (it
refuses such URIs, without repeating them), and every param, tag, metric name and artifact of
the search's MLflow runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rsearch import redact
from rsearch.cli import app
from rsearch.cluster.submit import SubmitOptions, prepare_submission
from rsearch.errors import UserError
from rsearch.tracking import start_ui
from tests.reliability.figures import record
from tests.tracking.helpers import read_search
from tests.tune.conftest import ray_2cpu, write_spec  # noqa: F401
from tests.tune.test_s3_storage import s3_storage  # noqa: F401

TRACK_SECRET = "trackPW7731"
STORE_SECRET = "storeKEY8842"
SECRETS = (TRACK_SECRET, STORE_SECRET)
runner = CliRunner()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """The base URL of a real MLflow tracking server on 127.0.0.1, its store in tmp_path."""
    (tmp_path / "server").mkdir()
    server = start_ui(
        f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}",
        port=0,
        log_path=tmp_path / "server.log",
    )
    try:
        yield server.base_url
    finally:
        server.stop()


def _captured(capfd: pytest.CaptureFixture[str]) -> str:
    # What reached the process's file descriptors (Ray's log lines, its workers' output).
    out, err = capfd.readouterr()
    return out + err


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 200) : at + 40]


def _run_dir_leaks(run_dir: Path) -> tuple[int, list[str]]:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    leaks = [f"{p.relative_to(run_dir)}: {s}" for p in files for s in _leaks(_text(p))]
    return len(files), leaks


def _text(path: Path) -> str:
    # Binary files too (Tune's pickles): a secret is a plain byte string in them.
    return path.read_bytes().decode("utf-8", errors="replace")


def _mlflow_leaks(base_url: str, experiment: str, dst: Path) -> tuple[int, list[str]]:
    s = read_search(base_url, experiment)
    items = 0
    leaks: list[str] = []
    for run in [s.parent, *s.children.values()]:
        data = run.data
        texts = [f"{k}={v}" for k, v in {**data.params, **data.tags}.items()] + list(data.metrics)
        texts += [_text(f) for f in s.all_artifacts(run, dst / run.info.run_id)]
        items += len(texts)
        leaks += [f"{run.info.run_name}: {secret}" for t in texts for secret in _leaks(t)]
    return items, leaks


@pytest.mark.slow
def test_no_credential_leaks_from_a_search(
    mlflow_server: str,
    s3_storage: tuple[str, Any],  # noqa: F811
    ray_2cpu: None,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    tracking = mlflow_server.replace("http://", f"http://rsuser:{TRACK_SECRET}@")
    storage = s3_storage[0].replace("s3://", f"s3://AKIDuser:{STORE_SECRET}@")
    spec_path = write_spec(tmp_path, trials=2, concurrent=2, scheduler="{type: none}", epochs=1)
    text = spec_path.read_text().replace("fraction: 0.5", "fraction: 0.2")
    text = text.rsplit("storage:", 1)[0]  # the spec names both URIs, comments kept
    spec_path.write_text(f"{text}tracking: {{uri: '{tracking}'}}  # server\nstorage: '{storage}'\n")

    res = runner.invoke(app, ["run", str(spec_path), "--no-live", "--local-dir", str(tmp_path)])
    console = res.output + _captured(capfd)
    assert res.exit_code == 0, console
    (run_dir,) = [p for p in tmp_path.glob("tiny-*") if p.is_dir()]
    assert "http://rsuser:***@127.0.0.1" in console  # the store is named, masked

    # Another process resumes: the real URIs come from the environment, never the run directory.
    monkeypatch.setattr(redact, "_real", {})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    again = runner.invoke(app, ["resume", str(run_dir), "--no-live"])
    console += again.output + _captured(capfd)
    assert again.exit_code == 0, console

    files, file_leaks = _run_dir_leaks(run_dir)
    items, mlflow_leaks = _mlflow_leaks(mlflow_server, "tiny", tmp_path / "mlflow-dl")
    assert items > 20 and files > 10
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(UserError) as refused:
        prepare_submission(spec_path, staging, SubmitOptions(), {})
    seconds = time.monotonic() - started
    record(
        "credentials in the tracking and storage URIs",
        "search 2 trials, resume, build the job entrypoint",
        1,
        "nothing" if not (file_leaks or mlflow_leaks or _leaks(console)) else "a credential",
        files_searched=files,
        mlflow_items_searched=items,
        seconds=round(seconds, 1),
    )
    assert file_leaks == []
    assert mlflow_leaks == []
    assert _leaks(console) == [], [_around(console, s) for s in _leaks(console)]
    assert "carries a credential" in str(refused.value) and _leaks(str(refused.value)) == []
    assert list(staging.iterdir()) == []
