"""The images build (docker/local/build.sh, on local stand-ins for the registry bases) and work:
each runs as a non-root user, the Ray image imports rsearch and validates a shipped spec, and the
MLflow image serves /health.

Marked `cluster` with the compose test (tests/deploy/test_compose_e2e.py): both need a Docker
daemon and the images, and run in `make test-deploy`, not in `make test`.
"""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.images import Images, build_images, docker, require_daemon

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    require_daemon()
    return build_images(tmp_path_factory.mktemp("build") / "build.log")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("attr", ["cpu", "mlflow", "postgres"])
def test_images_run_as_a_non_root_user(images: Images, attr: str) -> None:
    tag = getattr(images, attr)
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "id", tag)
    assert out.startswith("uid=") and not out.startswith("uid=0("), (tag, out)


def test_ray_image_imports_rsearch_and_validates_a_shipped_spec(images: Images) -> None:
    run = ("run", "--rm", "--network", "none", images.cpu)
    out = docker(*run, "python", "-c", "import rsearch, ray, torch; print(ray.__version__)")
    assert out.strip() == "2.60.0"
    out = docker(*run, "rsearch", "validate", "search_spaces/quickstart.yaml", timeout=300)
    assert "quickstart" in out


@pytest.fixture
def mlflow_server(images: Images, tmp_path: Path) -> Iterator[str]:
    """The MLflow image serving on 127.0.0.1 (host network) with a sqlite store inside it."""
    port = _free_port()
    name = f"rsearch-test-mlflow-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name, "--network", "host", images.mlflow,
        "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", "sqlite:////home/mlflow/mlflow.db",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "--force", name, check=False)


def test_mlflow_image_serves_health(mlflow_server: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{mlflow_server}/health", timeout=5) as response:
                assert response.read().decode().strip() == "OK"
                return
        except OSError:
            assert time.monotonic() < deadline, "the MLflow image never answered /health"
            time.sleep(2)
