"""Where a search came from, tagged on its parent run: spec digest, versions, commit, user."""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsearch import __version__
from rsearch.redact import redact
from rsearch.rundir.manifest import spec_hash
from rsearch.tracking.entities import text_value


def git_commit(directory: Path) -> str | None:
    """The commit checked out where `directory` lies, None outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def search_tags(
    spec_resolved: Mapping[str, Any],
    spec_written: Path | None,
    ray_address: str | None,
    extra: Mapping[str, Any],
) -> dict[str, str]:
    """The parent run's provenance tags, secrets masked.

    Args:
        spec_resolved: The resolved spec (its digest is tagged).
        spec_written: The spec file as written; the git commit is looked up beside it (else
            in the current directory).
        ray_address: The Ray cluster the search runs on (None: an embedded Ray).
        extra: More tags; they win over these.
    """
    source_dir = Path(spec_written).parent if spec_written else Path.cwd()
    tags: dict[str, Any] = {
        "rsearch.spec_hash": spec_hash(spec_resolved),
        "rsearch.version": __version__,
        "rsearch.ray_address": ray_address or "embedded",
        "mlflow.source.git.commit": git_commit(source_dir),
        "mlflow.user": _user(),
        **extra,
    }
    return {k: text_value(v) for k, v in redact(tags).items() if v is not None}


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) or no login name
        return None
