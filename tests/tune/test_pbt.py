"""PBT: the weaker trial restarts from the stronger one's checkpoint with perturbed values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow


def test_pbt_exploits_through_checkpoints(ray_2cpu: None, tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        name="pbt",
        algorithm="random",
        trials=2,
        concurrent=2,
        epochs=4,
        scheduler="{type: pbt, perturbation_interval: 2, quantile_fraction: 0.5, "
        "synchronous: true}",
    )
    # one trial that learns and one that cannot: the second must exploit the first
    warm = (
        "[{optim.lr: 0.08, loss.label_smoothing: 0.0}, "
        "{optim.lr: 0.001, loss.label_smoothing: 0.0}]"
    )
    spec = load_spec(path, [f"search.warm_start={warm}"])
    info = run_search(spec, path, live=False)
    assert not info.errors

    trials = load_study(info.run_dir, spec).trials
    assert len(trials) == 2 and all(t.user_attrs["metrics"]["epoch"] == 4 for t in trials)
    weak = next(t for t in trials if t.params["optim.lr"] == 0.001)
    # Checkpoints are named <trial>-<start token>-e<epoch>; a token is unique to one start.
    weak_id = weak.user_attrs["tune_trial_id"]
    starts: dict[str, list[Path]] = {}
    for ckpt in (info.run_dir / "train").glob(f"*/{weak_id}-*-e*"):
        token = ckpt.name[len(weak_id) + 1 : ckpt.name.rindex("-e")]
        starts.setdefault(token, []).append(ckpt)
    assert len(starts) >= 2, "the exploiting trial was not restarted"
    restarted = [sorted(starts[token]) for token in sorted(starts)[1:]]  # tokens sort by time
    state = torch.load(restarted[0][0] / "checkpoint.pt", map_location="cpu", weights_only=False)
    # restored from the donor's epoch-2 checkpoint, so its restart's first epoch is epoch 3
    assert state["epoch"] == 3
