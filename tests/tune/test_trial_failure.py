"""A trial whose training raises: retried, recorded as failed, and the search goes on."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.leaks import assert_nothing_left
from tests.tune.mlflow_checks import search_runs

pytestmark = pytest.mark.slow

# mixup pairs each batch with its reverse: an odd batch is refused when training starts.
WARM = "[{augment.mixup: 0.0, optim.lr: 0.05}, {augment.mixup: 0.2, optim.lr: 0.05},\
 {augment.mixup: 0.0, optim.lr: 0.08}]"


def test_a_failing_trial_is_retried_then_failed_and_the_search_goes_on(
    ray_2cpu: None, tmp_path: Path
) -> None:
    path = write_spec(tmp_path, algorithm="random", trials=3, concurrent=1, epochs=1)
    mixup = "  augment.mixup: {type: categorical, choices: [0.0, 0.2]}\n"
    path.write_text(path.read_text().replace("space:\n", "space:\n" + mixup))
    overrides = [
        f"search.warm_start={WARM}",
        "search.max_failures=1",
        "base.data.batch_size=63",
        "base.data.fraction=0.2",
    ]
    spec = load_spec(path, overrides)
    info = run_search(spec, path, live=False)

    assert len(info.errors) == 1 and "even per-worker batch" in info.errors[0], info.errors
    trials = load_study(info.run_dir, spec).trials
    states = [t.state for t in trials]
    assert states == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    _, children = search_runs(info.run_dir)
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED", "FINISHED", "FINISHED"]
    # the failing trial was started twice (max_failures 1) and the trial after it still
    # trained; nothing of the failed starts is left running
    assert_nothing_left()
