"""The layout of a run directory, shared by the code that writes it and the code that reads it.

A run directory (`<storage>/<name>-<timestamp>/`) is Tune's experiment directory plus rsearch's
own files, named here so the search driver, `rsearch best` and reports agree without
depending on each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rsearch.errors import UserError
from rsearch.spec.search import SearchSpec

MANIFEST = "rsearch.json"
"""Small JSON manifest: name, spec path, Ray address, tracking URI, whether it is tracked, and
`experiment`: Tune's experiment URI when storage is remote (null when it is this directory)."""
SPEC_AS_WRITTEN = "spec.yaml"
SPEC_RESOLVED = "resolved.yaml"
STUDY_FILE = "optuna.journal"
"""The run's Optuna study: a journal file, far faster than SQLite at a thousand trials."""


def is_run_dir(run_dir: Path) -> bool:
    """Whether run_dir holds an rsearch manifest and resolved spec."""
    return (run_dir / MANIFEST).is_file() and (run_dir / SPEC_RESOLVED).is_file()


def load_run_spec(run_dir: Path) -> SearchSpec:
    """The resolved spec a run directory was started with.

    Raises:
        UserError: When run_dir is not an rsearch run directory.
    """
    if not is_run_dir(run_dir):
        raise UserError(f"{run_dir} is not an rsearch run directory (no {MANIFEST})")
    return SearchSpec.model_validate(yaml.safe_load((run_dir / SPEC_RESOLVED).read_text()))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest as written by the search driver.

    Raises:
        UserError: When run_dir is not an rsearch run directory.
    """
    if not (run_dir / MANIFEST).is_file():
        raise UserError(f"{run_dir} is not an rsearch run directory (no {MANIFEST})")
    data = json.loads((run_dir / MANIFEST).read_text())
    return data if isinstance(data, dict) else {}


def study_file(run_dir: Path) -> Path:
    """The file holding a run's Optuna study."""
    return run_dir / STUDY_FILE
