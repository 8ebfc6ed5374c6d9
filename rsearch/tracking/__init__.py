"""MLflow tracking of searches; the only package that imports mlflow.

One parent run per search, one child run per trial, written from the Tune driver alone by
`SearchRecorder`. Importing this package is cheap: the parts that need mlflow (about 2.5 s to
import) load when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rsearch.settings import resolve_tracking_uri
from rsearch.tracking.spec_params import resolved_spec, search_settings
from rsearch.tracking.store import ensure_store

if TYPE_CHECKING:
    from rsearch.tracking.lookup import find_search_run, log_search_artifacts
    from rsearch.tracking.provenance import git_commit, spec_hash
    from rsearch.tracking.recorder import SearchRecorder
    from rsearch.tracking.ui import UiServer, runs_url, start_ui

_LAZY = {
    "SearchRecorder": "rsearch.tracking.recorder",
    "spec_hash": "rsearch.tracking.provenance",
    "git_commit": "rsearch.tracking.provenance",
    "find_search_run": "rsearch.tracking.lookup",
    "log_search_artifacts": "rsearch.tracking.lookup",
    "UiServer": "rsearch.tracking.ui",
    "runs_url": "rsearch.tracking.ui",
    "start_ui": "rsearch.tracking.ui",
}

__all__ = [
    "SearchRecorder",
    "UiServer",
    "ensure_store",
    "find_search_run",
    "git_commit",
    "log_search_artifacts",
    "resolve_tracking_uri",
    "resolved_spec",
    "runs_url",
    "search_settings",
    "spec_hash",
    "start_ui",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rsearch.tracking' has no attribute {name!r}")
