"""A spec that extends a recipe across folders, for the packaging and CLI tests."""

from __future__ import annotations

import socket
from pathlib import Path

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
