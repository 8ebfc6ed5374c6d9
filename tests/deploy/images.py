"""The images the Docker tests use, built once a session by docker/local/build.sh.

No image registry is reachable here or on CI, so the images are built on local stand-ins for
Ray's and Python's base images (see the script). Where no Docker daemon answers the tests skip
and say why; `.ci/run` starts one first (docker/local/start-dockerd.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.paths import DOCKER

BUILD_SCRIPT = DOCKER / "local" / "build.sh"
BUILD_TIMEOUT = 3600


@dataclass(frozen=True)
class Images:
    """The tags docker/local/build.sh leaves, and how long the build took this session."""

    cpu: str = "rsearch:cpu"
    mlflow: str = "rsearch-mlflow:3.17.2"
    postgres: str = "rsearch-local/postgres:15"
    build_seconds: float = 0.0


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run the docker CLI; its stdout, or an assertion error with its output."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def require_daemon() -> None:
    """Skip, saying why, where no Docker daemon answers."""
    if shutil.which("docker") is None:
        pytest.skip("NO DOCKER CLIENT: docker/local/start-dockerd.sh installs one")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip(f"NO DOCKER DAEMON ANSWERS ({info.stderr.strip()[:200]})")


def build_images(log: Path) -> Images:
    """Run docker/local/build.sh (its output into log); fail with its last lines if it fails."""
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT
        )
    text = log.read_text()
    assert result.returncode == 0, f"{BUILD_SCRIPT} failed:\n{text[-6000:]}"
    print(text)  # each step's wall time, for the CI log (pytest -s shows it)
    return Images(build_seconds=time.monotonic() - started)
