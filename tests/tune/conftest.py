"""Shared pieces of the Ray integration tests: a tiny, fast search spec on real data."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

# Keep Ray's own output and metrics agents quiet and light in tests.
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TINY_SPEC = """\
name: {name}
objective: {objective}
search:
  algorithm: {algorithm}
  num_trials: {trials}
  max_concurrent: {concurrent}
  seed: 0
scheduler: {scheduler}
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
base:
  model: {{name: test_resnet}}
  data: {{dataset: digits, image_size: 16, batch_size: 64, fraction: 0.5}}
  optim: {{name: sgd, lr: 0.05}}
  augment: {{random_resized_crop: false, hflip: 0.0}}
  epochs: {epochs}
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
  loss.label_smoothing: {{type: float, low: 0.0, high: 0.2}}
"""


def write_spec(tmp_path: Path, **fields: object) -> Path:
    """A tiny search spec (timm's test_resnet on half of digits at 16 px) in tmp_path."""
    values: dict[str, object] = {
        "name": "tiny",
        "objective": "{metric: val_top1, mode: max}",
        "algorithm": "tpe",
        "trials": 4,
        "concurrent": 2,
        "scheduler": "{type: asha, grace_period: 1, reduction_factor: 2}",
        "epochs": 2,
    }
    values.update(fields)
    path = tmp_path / f"{values['name']}.yaml"
    path.write_text(TINY_SPEC.format(**values) + f"storage: {tmp_path / 'runs'}\n")
    return path


@pytest.fixture
def ray_2cpu():
    """A real local Ray with 2 CPUs for one test, shut down after it."""
    import ray

    from rsearch.tune.cluster import connect

    # The embedded Ray of `rsearch run` (2 CPUs here), State API wiring included.
    connect(None, log_to_driver=False)
    yield
    ray.shutdown()


def kill_group(pgid: int, timeout: float = 30.0) -> None:
    """SIGKILL a process group until none of it is left (Ray's processes included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process group {pgid} outlived SIGKILL for {timeout:g} s")
