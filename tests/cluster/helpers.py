"""A spec that extends a recipe across folders, a closed port, and a machine without Ray
settings: for the packaging and cluster CLI tests."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rsearch.spec.names import cache_dir

SPEC = """\
name: layered
objective: {{metric: val_top1, mode: max}}
search: {{num_trials: 2}}
base:
  extends: ../presets/small.yaml
  data: {{dataset: digits, image_size: 16}}
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
storage: {storage}
"""


def write_layered_spec(root: Path, storage: str = "s3://bucket/runs") -> Path:
    """specs/layered.yaml -> presets/small.yaml -> presets/common/optim.yaml, plus a bystander."""
    (root / "specs").mkdir(parents=True)
    (root / "presets" / "common").mkdir(parents=True)
    (root / "presets" / "small.yaml").write_text(
        "extends: [common/optim.yaml]\nmodel: {name: test_resnet}\nepochs: 3\n"
    )
    (root / "presets" / "common" / "optim.yaml").write_text("optim: {name: sgd, lr: 0.07}\n")
    (root / "specs" / "unrelated.yaml").write_text("not: shipped\n")
    spec = root / "specs" / "layered.yaml"
    spec.write_text(SPEC.format(storage=storage))
    return spec


def closed_port() -> int:
    """A local port nobody listens at (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forget_this_machines_ray(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No Ray address or token from this machine's environment or home directory.

    The timm name cache is kept where it was (it lives under HOME by default): only for speed.
    """
    monkeypatch.setenv("RSEARCH_CACHE", str(cache_dir()))
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
