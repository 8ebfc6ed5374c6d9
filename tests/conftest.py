"""Suite-wide settings: nothing a test does may read or write the user's stores and caches.

Every cache, configuration and store directory that rsearch or a library it uses writes to
during tests is pointed at a fresh temporary directory, so each test sees a fresh machine
whatever ran before it (alone or in the suite) and leaves nothing behind. This happens before
any test module or other conftest is imported: matplotlib and huggingface_hub read their
directories at import. HOME itself and ~/.ray stay: Ray's token authentication reads
~/.ray/auth_token.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ISOLATED_DIRS = {
    "RSEARCH_CACHE": "rsearch",  # timm's model and optimizer names (rsearch.spec.names)
    "XDG_CACHE_HOME": "cache",  # any other library's ~/.cache
    "XDG_CONFIG_HOME": "config",  # MLflow's telemetry id (~/.config/mlflow), Chromium's profile
    "MPLCONFIGDIR": "matplotlib",  # the report's figures: font cache and matplotlibrc
    "TORCH_HOME": "torch",  # torch.hub downloads
    "HF_HOME": "huggingface",  # timm's pretrained weights through huggingface_hub
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",  # compiled models (recipe `compile: true`)
    "TRITON_CACHE_DIR": "triton",
}
"""Environment variable -> its directory under the session's temporary root."""


def _isolated_environment(root: Path) -> dict[str, str]:
    """The variables that keep a test session's caches and stores under root."""
    env = {name: str(root / folder) for name, folder in ISOLATED_DIRS.items()}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"  # MLflow's default store
    return env


def _one_core_per_xdist_worker() -> None:
    """Pin a pytest-xdist worker (`make test` runs the fast tests two at a time) to a core.

    Each worker's torch would otherwise size its thread pool to every core of the machine: two
    workers on two cores then run four busy threads that wait on each other's spinning (a test
    of 3 s alone took 70 s that way). One core each, and rsearch's thread count (read from the
    affinity, rsearch.train.runtime.cpu_threads) follows.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})
    os.environ["OMP_NUM_THREADS"] = "1"  # torch is not imported yet: its pool starts at one


_one_core_per_xdist_worker()

# Set on import, not in pytest_configure: pytest imports the conftest files of the paths it is
# given (tests/tracking/conftest.py imports MLflow) before it configures, and this file first.
_ROOT = Path(tempfile.mkdtemp(prefix="rsearch-tests-"))
_ENV = _isolated_environment(_ROOT)
_SAVED = {name: os.environ.get(name) for name in _ENV}
for _folder in ISOLATED_DIRS.values():
    (_ROOT / _folder).mkdir()
os.environ.update(_ENV)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the environment and remove the session's directory."""
    for name, value in _SAVED.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_ROOT, ignore_errors=True)
