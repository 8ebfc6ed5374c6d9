"""A resumed search draws new configurations: its sampler does not replay its first trials.

The sampler is rebuilt from the spec's seed in every process that opens the study; a
resumed driver's sampler, seeded as the first run's, would draw the first trials' random
numbers again and train their configurations twice (a random search, TPE's start-up trials).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import parse_spec_text
from rsearch.tune.optuna_searcher import PARAMS, OptunaSearcher

SPEC = """
name: s
objective: {{metric: val_top1}}
search: {{algorithm: {algorithm}, num_trials: 8, seed: 0}}
scheduler: {{type: none}}
space:
  optim.lr: {{type: float, low: 0.001, high: 0.3, log: true}}
  loss.label_smoothing: {{type: float, low: 0.0, high: 0.2}}
"""


def _configs(searcher: OptunaSearcher, ids: list[str]) -> list[dict[str, float]]:
    configs = [searcher.suggest(i) for i in ids]
    return [c[PARAMS] for c in configs if c is not None]


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_a_resumed_searcher_does_not_repeat_earlier_configurations(
    tmp_path: Path, algorithm: str
) -> None:
    spec = parse_spec_text(SPEC.format(algorithm=algorithm))
    study = tmp_path / "optuna.journal"
    first = OptunaSearcher(spec, study, budget_epochs=2)
    before = _configs(first, ["a", "b"])
    first.save(str(tmp_path / "state.pkl"))

    resumed = OptunaSearcher(spec, study, budget_epochs=2)  # a new driver process
    resumed.restore(str(tmp_path / "state.pkl"))
    after = _configs(resumed, ["c", "d"])
    assert len(before) == len(after) == 2
    assert not any(config in before for config in after), (before, after)


def test_a_resumed_search_draws_the_same_configurations_each_time(tmp_path: Path) -> None:
    spec = parse_spec_text(SPEC.format(algorithm="random"))
    drawn = []
    for copy in ("one", "two"):
        study = tmp_path / copy / "optuna.journal"
        study.parent.mkdir()
        _configs(OptunaSearcher(spec, study, budget_epochs=2), ["a", "b"])
        drawn.append(_configs(OptunaSearcher(spec, study, budget_epochs=2), ["c"]))
    assert drawn[0] == drawn[1], "a resume is as reproducible as the run it continues"
