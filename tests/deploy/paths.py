"""Where the deployment files live, and the tools the deployment tests call."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
KUBERAY = CLUSTERS / "kuberay"
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"


def venv_tool(name: str) -> str | None:
    """A console script installed beside this interpreter (the dev extras), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)
