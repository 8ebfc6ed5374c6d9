"""Submitting searches to a real token-protected Ray head through the Jobs API.

One head (`ray start --head` on free ports, its own temp dir and token) serves the module; it
is stopped by its process group at the end, so no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.cli.jobs import follow_to_end
from rsearch.cluster.address import dashboard_address
from rsearch.cluster.auth import resolve_token
from rsearch.cluster.jobs import Jobs
from rsearch.cluster.package import rsearch_dir, runtime_env, stage
from tests.cluster.head import Head, ray_head
from tests.tune.conftest import write_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

runner = CliRunner()


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    with ray_head() as started:
        yield started


@pytest.fixture(autouse=True)
def _only_the_flags_say_where(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No address or token from this machine leaks in; HOME has no ~/.ray/auth_token."""
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + res.stderr
    return str(res.stdout)


def test_submit_runs_the_search_and_records_it(
    head: Head, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path, trials=2, epochs=1, concurrent=2, scheduler="{type: none}")
    token_file = tmp_path / "token"
    token_file.write_text(head.token)
    token_file.chmod(0o600)  # a token file others can read is refused
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stdout = _ok(
        [
            "submit",
            str(spec),
            "--address",
            head.url,
            "--token-file",
            str(token_file),
            "--tracking-uri",
            store,
            "--storage",
            str(tmp_path / "runs"),
            "--allow-local-storage",
            "--package",
            "ship",
            "--wait",
        ]  # fmt: skip
    )
    job_id = stdout.splitlines()[0]
    assert job_id.startswith("rsearch-tiny-")
    assert "best trial" in stdout  # the job's own output, followed to its end

    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    assert "SUCCEEDED" in _ok(["status", job_id, "--address", head.url])
    logs = _ok(["logs", job_id, "--address", head.url])
    assert logs.count("Reporting training result 1") == 2  # both trials trained an epoch
    assert job_id in _ok(["jobs", "--address", head.url])
    _assert_parent_and_children(store, "tiny", children=2)


def _assert_parent_and_children(store: str, experiment: str, children: int) -> None:
    import mlflow

    client = mlflow.MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(kids) == children == len(runs) - 1


def test_shipped_rsearch_is_the_one_the_job_imports(head: Head, tmp_path: Path) -> None:
    """The cluster's python here has rsearch installed too; the shipped copy must win."""
    staged = stage(write_spec(tmp_path), tmp_path / "staging")
    jobs = Jobs(dashboard_address(head.url), resolve_token(head.token))
    job_id = jobs.submit(
        "python -c 'import rsearch; print(\"rsearch from\", rsearch.__file__)'",
        runtime_env(staged, ship=True),
        f"ship-check-{tmp_path.name}",
        {},
    )
    assert str(jobs.wait(job_id).status.value) == "SUCCEEDED"
    line = next(x for x in jobs.logs(job_id).splitlines() if x.startswith("rsearch from"))
    assert "runtime_resources/py_modules_files" in line and str(rsearch_dir()) not in line


def test_wait_on_a_failing_job_exits_1_with_its_status(
    head: Head, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staged = stage(write_spec(tmp_path), tmp_path / "staging")
    jobs = Jobs(dashboard_address(head.url), resolve_token(head.token))
    job_id = jobs.submit(
        "python -c 'import sys; print(\"boom\"); sys.exit(3)'",
        runtime_env(staged, ship=False),
        f"fail-check-{tmp_path.name}",
        {},
    )
    with pytest.raises(typer.Exit) as stopped:
        follow_to_end(jobs, job_id)
    assert stopped.value.exit_code == 1
    printed = capsys.readouterr()
    assert "boom" in printed.out
    assert f"job {job_id} FAILED" in printed.err


def test_wrong_token_is_a_clear_403(head: Head) -> None:
    wrong = "not-the-token-0123456789"
    res = runner.invoke(app, ["jobs", "--address", head.url, "--token", wrong])
    assert res.exit_code == 2
    assert "rejected the auth token from --token (HTTP 403: wrong token)" in res.stderr
    assert wrong not in res.output + res.stderr and "Traceback" not in res.stderr


def test_no_token_is_a_clear_401(head: Head) -> None:
    res = runner.invoke(app, ["status", "anything", "--address", head.url])
    assert res.exit_code == 2
    assert "requires an auth token (HTTP 401) and none was found" in res.stderr
    assert "--token-file" in res.stderr and "Traceback" not in res.stderr


def test_stop_a_long_search_and_unknown_ids(
    head: Head, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    spec = write_spec(tmp_path, name="long", trials=1, epochs=5000, scheduler="{type: none}")
    args = ["--address", head.url]
    job_id = _ok(
        [
            "submit",
            str(spec),
            *args,
            "--no-track",
            "--storage",
            str(tmp_path / "runs"),
            "--allow-local-storage",
            "--package",
            "installed",
        ]  # fmt: skip
    ).strip()
    _wait_for_log(job_id, args, "Reporting training result 1", timeout_s=180)
    assert f"job {job_id} STOPPED" in _ok(["stop", job_id, "--wait", *args])
    assert "STOPPED" in _ok(["status", job_id, *args])

    res = runner.invoke(app, ["logs", "raysubmit_nope", *args])
    assert res.exit_code == 2
    assert "no job 'raysubmit_nope'" in res.stderr and job_id in res.stderr


def _wait_for_log(job_id: str, args: list[str], text: str, timeout_s: float) -> None:
    """Until the job has printed text (it is training), or fail with what it printed."""
    deadline = time.monotonic() + timeout_s
    logs = ""
    while time.monotonic() < deadline:
        logs = _ok(["logs", job_id, *args])
        if text in logs:
            return
        time.sleep(2)
    pytest.fail(f"{text!r} not in the job's logs after {timeout_s:.0f} s:\n{logs[-3000:]}")


def test_embedded_ray_starts_its_own_even_beside_a_cluster(head: Head, tmp_path: Path) -> None:
    """`rsearch run` without --address must not join a cluster $RAY_ADDRESS names."""
    probe = (
        "import ray\n"
        "from rsearch.tune.cluster import connect\n"
        "connect(None, log_to_driver=False)\n"
        "print(ray.get_runtime_context().gcs_address)\n"
    )
    env = {**os.environ, "RAY_ADDRESS": head.gcs_address, "HOME": str(tmp_path / "home")}
    res = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=180
    )
    assert res.returncode == 0, res.stderr[-2000:]
    joined = res.stdout.strip().splitlines()[-1]
    assert joined and joined != head.gcs_address
