"""plan_search: trials as `rsearch sample` draws them, priced, totalled, against the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.plan import MeasuredSpeed, ThroughputCache, plan_search
from rsearch.plan.bill import wall_clock_s
from rsearch.spec import parse_spec_text
from rsearch.spec.search import SearchSpec
from rsearch.tune.sample import sample_trials
from tests.plan.helpers import ConstantSpeed

SPEC = """\
name: tiny
objective: {{metric: val_top1}}
search:
  algorithm: random
  num_trials: {trials}
  warm_start: [{{optim.lr: 0.05}}]{budget}
scheduler: {scheduler}
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
base:
  model: {{name: test_resnet}}
  data: {{dataset: digits, image_size: 16, batch_size: 64, fraction: 0.5}}
  epochs: 3
space:
  optim.lr: {{type: float, low: 0.01, high: 0.1, log: true}}
"""
ASHA = "{type: asha, grace_period: 1, reduction_factor: 3}"


def _spec(trials: int = 6, scheduler: str = ASHA, budget: str = "") -> SearchSpec:
    text = SPEC.format(trials=trials, scheduler=scheduler, budget=budget)
    return parse_spec_text(text)


def test_plan_adds_up_and_follows_sample() -> None:
    spec = _spec()
    plan = plan_search(spec, 4, 0, speed=ConstantSpeed())
    drawn = sample_trials(spec, 6)
    assert [t.params for t in plan.trials] == [t.params for t in drawn]
    assert plan.trials[0].params == {"optim.lr": 0.05}  # the warm start comes first
    assert plan.concurrency == 4  # min(6 trials, 4 CPUs / 1 CPU a trial)
    assert plan.total_flops == pytest.approx(sum(t.expected.flops for t in plan.trials))
    assert plan.total_flops == pytest.approx(plan.total_train_flops + plan.total_eval_flops)
    assert plan.device_hours == {"cpu": pytest.approx(plan.total_device_hours)}
    assert plan.total_device_hours == pytest.approx(
        sum(t.expected.device_hours for t in plan.trials)
    )
    # 6 trials, rf 3: 4 stop after epoch 1, 2 run all 3 epochs
    assert [t.expected.epochs for t in plan.trials] == [pytest.approx(5 / 3)] * 6
    assert all(t.full.epochs == 3 for t in plan.trials)
    walls = [t.expected.wall_hours for t in plan.trials]
    assert plan.wall_clock_hours == pytest.approx(walls[0] * 2)  # 6 equal trials on 4 slots
    assert plan.budget is None
    assert [(b.trials, [r.milestone for r in b.rungs], b.to_end) for b in plan.brackets] == [
        (6, [1.0], 2)
    ]


def test_budget_verdict_counts_the_trials_that_fit() -> None:
    three = plan_search(_spec(trials=3), 4, 0, speed=ConstantSpeed())
    budget = f"\n  budget: {{flops: {three.total_flops * 1.0001:.6e}}}"
    plan = plan_search(_spec(budget=budget), 4, 0, speed=ConstantSpeed())
    assert plan.budget is not None
    assert not plan.budget.fits
    assert plan.budget.trials_that_fit == 3
    assert plan.budget.flops == pytest.approx(three.total_flops * 1.0001)
    roomy = plan_search(
        _spec(budget="\n  budget: {device_hours: 100}"), 4, 0, speed=ConstantSpeed()
    )
    assert roomy.budget is not None and roomy.budget.fits and roomy.budget.trials_that_fit == 6


@pytest.mark.parametrize(("kind", "bound"), [("median", True), ("pbt", True), ("none", False)])
def test_schedulers_without_rungs_price_the_whole_budget(kind: str, bound: bool) -> None:
    plan = plan_search(_spec(scheduler=f"{{type: {kind}}}"), 2, 0, speed=ConstantSpeed())
    assert plan.upper_bound is bound
    assert all(t.expected == t.full for t in plan.trials)
    assert any("upper bound" in note for note in plan.notes) is bound


def test_wall_clock_takes_the_next_free_slot() -> None:
    assert wall_clock_s([3, 1, 1, 1], 2) == 3
    assert wall_clock_s([2, 2, 2], 2) == 4
    assert wall_clock_s([5], 8) == 5
    assert wall_clock_s([], 2) == 0


def test_plan_with_real_measurements(tmp_path: Path) -> None:
    cache = ThroughputCache(tmp_path / "throughput.json")
    plan = plan_search(_spec(trials=2), 2, 0, speed=MeasuredSpeed(cache))
    assert plan.speed_source == "measured"
    (measured,) = cache.file.read().values()  # one architecture at one resolution
    assert plan.trials[0].train_images_per_s == pytest.approx(measured["images_per_s"])
    assert plan.total_device_hours > 0
