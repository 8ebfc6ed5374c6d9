"""docs/deploy.md names only repository files that exist (or that the reader creates)."""

from __future__ import annotations

import re

from tests.deploy.paths import DEPLOY_DOC, DOCKER, REPO

# A path into one of the repository's top-level folders, as the doc writes it.
REPO_PATH = re.compile(r"(?<![\w/.~$-])((?:clusters|docker|docs|search_spaces)/[\w./-]*[\w])")
# Files the reader makes from the examples: they hold secrets, so git must ignore them.
CREATED_BY_READER = {"docker/.env", "docker/ray-token"}


def _named_paths() -> set[str]:
    return set(REPO_PATH.findall(DEPLOY_DOC.read_text()))


def test_doc_names_the_deployment_files() -> None:
    named = _named_paths()
    expected = {
        "docker/compose.yaml",
        "docker/.env.example",
        "docker/Dockerfile.cpu",
        "docker/Dockerfile.cuda",
        "docker/Dockerfile.mlflow",
        "clusters/aws.yaml",
        "clusters/gcp.yaml",
        "clusters/local.yaml",
        "clusters/kuberay/raycluster.yaml",
        "clusters/kuberay/rayjob.yaml",
        "clusters/kuberay/storage.yaml",
        "clusters/kuberay/mlflow.yaml",
        "clusters/kuberay/secret.example.yaml",
        "search_spaces/quickstart.yaml",
    }
    assert expected <= named


def test_every_named_file_exists() -> None:
    missing = sorted(p for p in _named_paths() - CREATED_BY_READER if not (REPO / p).exists())
    assert missing == []


def test_files_the_reader_creates_are_git_ignored() -> None:
    ignored = set((DOCKER / ".gitignore").read_text().split())
    for path in CREATED_BY_READER:
        assert path.removeprefix("docker/") in ignored, path


def test_the_path_pattern_finds_a_missing_file() -> None:
    text = "run `rsearch submit search_spaces/nope.yaml` with clusters/aws.yaml"
    found = set(REPO_PATH.findall(text))
    assert found == {"search_spaces/nope.yaml", "clusters/aws.yaml"}
    assert not (REPO / "search_spaces/nope.yaml").exists()
