"""Builds docker/Dockerfile.cpu and runs `rsearch --help` in the image.

Images cannot be pulled here or on CI, so this runs only where a Docker daemon answers and
the Ray base image is already present locally; otherwise it skips and says which is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.deploy.paths import DOCKER, REPO

BASE_IMAGE = "rayproject/ray:2.60.0-py311-cpu"

pytestmark = pytest.mark.slow


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def image_tag() -> Iterator[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    if _docker("info").returncode != 0:
        pytest.skip("no Docker daemon answers")
    if _docker("image", "inspect", BASE_IMAGE).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} is not present locally (it cannot be pulled here)")
    tag = f"rsearch-test:{uuid.uuid4().hex[:12]}"
    yield tag
    _docker("image", "rm", "--force", tag)


def test_cpu_image_builds_and_runs_rsearch(image_tag: str) -> None:
    # The torch CPU index may be unreachable on a build machine; a mirror can stand in for it.
    index = os.environ.get("RSEARCH_TEST_TORCH_INDEX_URL")
    build_args = ["--build-arg", f"TORCH_INDEX_URL={index}"] if index else []
    build = subprocess.run(
        ["docker", "build", "-f", str(DOCKER / "Dockerfile.cpu"), "-t", image_tag]
        + [*build_args, str(REPO)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    run = _docker("run", "--rm", image_tag, "rsearch", "--help", timeout=300)
    assert run.returncode == 0, run.stderr
    assert "validate" in run.stdout and "resume" in run.stdout
    user = _docker("run", "--rm", image_tag, "id", "-u", timeout=120)
    assert user.stdout.strip() == "1000"
