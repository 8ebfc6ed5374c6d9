"""docker/compose.yaml: structure the docs rely on, and `docker-compose config` (offline)."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.paths import COMPOSE_FILE, DOCKER, venv_tool

ENV_EXAMPLE = DOCKER / ".env.example"
RAY_NODES = ("ray-head", "ray-worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service["environment"]
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def test_services_and_their_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "ray-head", "ray-worker"}
    order = {"mlflow": "postgres", "ray-head": "mlflow", "ray-worker": "ray-head"}
    for name, needs in order.items():
        assert services[name]["depends_on"] == {needs: {"condition": "service_healthy"}}


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name


def test_ray_nodes_share_storage_token_and_mlflow(compose: dict[str, Any]) -> None:
    for name in RAY_NODES:
        service = compose["services"][name]
        env = _env(service)
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert "rsearch-storage:/shared" in service["volumes"], name
    assert "rsearch-storage" in compose["volumes"]


def test_head_blocks_and_workers_join_it(compose: dict[str, Any]) -> None:
    head = compose["services"]["ray-head"]["command"]
    worker = compose["services"]["ray-worker"]["command"]
    assert head[:2] == ["ray", "start"] and "--head" in head and "--block" in head
    assert "--port=6379" in head and "--dashboard-port=8265" in head
    assert "--address=ray-head:6379" in worker and "--block" in worker
    assert all(compose["services"][name]["init"] is True for name in RAY_NODES)


def test_workers_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["ray-worker"]
    # A fixed name or published port would make `--scale ray-worker=N` fail on the second one.
    assert "container_name" not in worker and "ports" not in worker


def test_mlflow_uses_postgres_and_an_artifact_volume(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    args = dict(a.split("=", 1) for a in mlflow["command"] if a.startswith("--") and "=" in a)
    assert args["--backend-store-uri"].startswith("postgresql+psycopg2://")
    destination = args["--artifacts-destination"]
    assert any(v.endswith(f":{destination}") for v in mlflow["volumes"])
    assert _env(mlflow)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert args["--workers"] == "1"


def test_env_example_documents_every_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))
    assert used - documented == set()
    assert documented - used == set()


def _compose_config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (pip install -e '.[dev]' brings it)")
    # Variables from the caller's shell would override the example file's values.
    own = ("COMPOSE_", "RAY_", "POSTGRES_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra_env)
    cmd = [tool, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config"]
    return subprocess.run(
        [*cmd, "--format", "json"], capture_output=True, text=True, timeout=60, env=env, cwd=DOCKER
    )


def test_docker_compose_accepts_the_file_with_the_secrets_set() -> None:
    result = _compose_config({"RAY_AUTH_TOKEN": "t0ken", "POSTGRES_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == {"postgres", "mlflow", "ray-head", "ray-worker"}
    assert resolved["services"]["ray-worker"]["environment"]["RAY_AUTH_TOKEN"] == "t0ken"
    ports = resolved["services"]["ray-head"]["ports"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in ports] == [
        ("127.0.0.1", "8265", 8265)
    ]


def test_docker_compose_refuses_to_start_without_the_token() -> None:
    result = _compose_config({"POSTGRES_PASSWORD": "pw"})
    assert result.returncode != 0
    assert "RAY_AUTH_TOKEN" in result.stderr
