"""Scheduler arithmetic: rungs, brackets, expected stops (pure; Ray only to check the mirror)."""

from __future__ import annotations

import math

import pytest

from rsearch.plan import admission_cost, cost_to_epoch
from rsearch.plan.cost import EpochCost, TrialCost
from rsearch.plan.rungs import Bracket, Rung, asha_milestones, expected_spend, schedule, trial_end
from rsearch.spec import parse_spec_text
from rsearch.spec.search import SearchSpec

SPEC = """\
name: r
objective: {{metric: val_top1}}
search: {{num_trials: {trials}}}
scheduler: {scheduler}
base: {{model: {{name: test_resnet}}, epochs: {epochs}}}
"""


def _spec(scheduler: str, trials: int = 27, epochs: int = 9) -> SearchSpec:
    return parse_spec_text(SPEC.format(scheduler=scheduler, trials=trials, epochs=epochs))


def _cost(fidelities: list[float]) -> TrialCost:
    """A trial whose epoch e costs 100 FLOPs per unit of fidelity and 10 s per unit."""
    epochs = tuple(EpochCost(16, 16, 10, 5, 100.0 * f, 0.0, f, 10.0 * f) for f in fidelities)
    return TrialCost(epochs, "cpu", 1, "measured", 1.0)


def test_asha_rungs_on_a_fixed_spec() -> None:
    spec = _spec("{type: asha, grace_period: 1, reduction_factor: 3, max_t: 9}")
    sched = schedule(spec, 27, 9.0)
    # rungs at 1, 3 (9 is max_t: trials end there); 27 -> 9 -> 3 trials
    assert sched.brackets == (Bracket(27, (Rung(1.0, 27), Rung(3.0, 9)), 3, None, None),)
    assert sched.stops(0) == [(18 / 27, 1.0), (6 / 27, 3.0), (3 / 27, None)]
    cost = _cost([1.0] * 9)
    spend = expected_spend(spec, sched, 5, cost, 9.0)
    assert spend.epochs == pytest.approx((18 * 1 + 6 * 3 + 3 * 9) / 27)
    assert spend.train_flops == pytest.approx(100 * spend.epochs)
    assert not sched.upper_bound


@pytest.mark.parametrize(
    ("trials", "reached"),
    [(1, [1, 1, 1]), (2, [2, 1, 1]), (10, [10, 4, 2]), (28, [28, 10, 4])],
)
def test_asha_trials_reaching_each_rung_round_up(trials: int, reached: list[int]) -> None:
    spec = _spec("{type: asha, grace_period: 1, reduction_factor: 3}", trials)
    (bracket,) = schedule(spec, trials, 9.0).brackets
    assert [r.trials for r in bracket.rungs] + [bracket.to_end] == reached


def test_asha_fractional_grace_stops_after_whole_epochs() -> None:
    spec = _spec("{type: asha, grace_period: 1.5, reduction_factor: 2, max_t: 6}", 8, 6)
    sched = schedule(spec, 8, 6.0)
    assert [r.milestone for r in sched.brackets[0].rungs] == [1.5, 3.0]
    cost = _cost([1.0] * 6)
    # 4 stop at 1.5 (after epoch 2), 2 at 3, 2 run all 6
    assert expected_spend(spec, sched, 0, cost, 6.0).epochs == pytest.approx(
        (4 * 2 + 2 * 3 + 2 * 6) / 8
    )


def test_asha_compute_rungs_end_after_the_epoch_reaching_them() -> None:
    spec = _spec(
        "{type: asha, unit: compute, grace_period: 0.5, reduction_factor: 2, max_t: 2}", 4, 5
    )
    cost = _cost([0.25, 0.25, 0.5, 1.0, 1.0])  # cumulative 0.25, 0.5, 1, 2, 3
    sched = schedule(spec, 4, 2.0)
    assert [r.milestone for r in sched.brackets[0].rungs] == [0.5, 1.0]
    assert trial_end(spec, cost, 2.0) == 4  # max_t 2 is reached after epoch 4
    # 2 stop at 0.5 (epoch 2), 1 at 1.0 (epoch 3), 1 runs to max_t (epoch 4)
    spend = expected_spend(spec, sched, 3, cost, 2.0)
    assert spend.epochs == pytest.approx((2 * 2 + 1 * 3 + 1 * 4) / 4)
    assert spend.fidelity == pytest.approx((2 * 0.5 + 1 * 1.0 + 1 * 2.0) / 4)


@pytest.mark.parametrize(
    ("grace", "rf", "max_t", "brackets"),
    [(1, 3, 9, 1), (1, 2, 10, 3), (1.5, 2, 12, 2), (0.25, 3, 3.5, 2), (2, 4, 100, 3)],
)
def test_asha_milestones_mirror_rays(grace: float, rf: float, max_t: float, brackets: int) -> None:
    from ray.tune.schedulers.async_hyperband import _Bracket

    for s in range(brackets):
        ray_rungs = sorted(m for m, _ in _Bracket(grace, max_t, rf, s)._rungs)
        assert asha_milestones(grace, rf, max_t, s) == pytest.approx(ray_rungs)


def test_asha_brackets_share_trials_by_rays_probabilities() -> None:
    spec = _spec("{type: asha, grace_period: 1, reduction_factor: 3, brackets: 2}", 10)
    sched = schedule(spec, 10, 9.0)
    # rung counts 3 and 2: probabilities 1 and e^-1, normalised -> 7.3 and 2.7 trials
    assert [b.trials for b in sched.brackets] == [7, 3]
    assert [r.milestone for r in sched.brackets[1].rungs] == [3.0]
    stops = sched.stops(4)  # any trial: in either bracket, by chance
    assert sum(p for p, _ in stops) == pytest.approx(1.0)


def test_hyperband_fills_brackets_in_proposal_order() -> None:
    spec = _spec("{type: hyperband, reduction_factor: 3, max_t: 9}", 20)
    sched = schedule(spec, 20, 9.0)
    # Ray's band: s = 0 (3 trials from 9), s = 1 (5 from 3), s = 2 (9 from 1), then a new band
    assert [(b.trials, b.members) for b in sched.brackets] == [
        (3, (0, 1, 2)),
        (5, (3, 4, 5, 6, 7)),
        (9, tuple(range(8, 17))),
        (3, (17, 18, 19)),
    ]
    s1, s2 = sched.brackets[1], sched.brackets[2]
    assert (s1.rungs, s1.to_end, s1.end) == ((Rung(3.0, 5),), 2, 9.0)
    assert (s2.rungs, s2.to_end, s2.end) == ((Rung(1.0, 9), Rung(3.0, 3)), 1, 9.0)
    assert sched.stops(0) == [(1.0, 9.0)]
    assert sched.stops(10) == [(6 / 9, 1.0), (2 / 9, 3.0), (1 / 9, 9.0)]


def test_hyperband_bracket_sizes_mirror_rays() -> None:
    from ray.tune.schedulers import HyperBandScheduler

    for max_t, eta in [(9, 3), (27, 3), (10, 2), (81, 3), (4, 4)]:
        ray = HyperBandScheduler(metric="m", mode="max", max_t=max_t, reduction_factor=eta)
        spec = _spec(f"{{type: hyperband, reduction_factor: {eta}, max_t: {max_t}}}", 500)
        brackets = schedule(spec, 500, float(max_t)).brackets
        band = [s for s in range(ray._s_max_1) if ray._get_r0(s) > 0]
        for s, bracket in zip(band, brackets, strict=False):
            assert bracket.trials == ray._get_n0(s)
            first = bracket.rungs[0].milestone if bracket.rungs else bracket.end
            assert first == ray._get_r0(s)


@pytest.mark.parametrize("kind", ["none", "median", "pbt"])
def test_schedulers_without_rungs_run_every_trial_to_its_end(kind: str) -> None:
    spec = _spec(f"{{type: {kind}}}", 6, 4)
    sched = schedule(spec, 6, 4.0)
    assert sched.stops(3) == [(1.0, None)]
    assert sched.upper_bound == (kind != "none")
    cost = _cost([1.0] * 4)
    assert expected_spend(spec, sched, 3, cost, 4.0) == cost_to_epoch(cost, 4)


def test_epoch_budget_caps_a_longer_trial() -> None:
    spec = _spec("{type: asha, grace_period: 1, max_t: 3}", 3, 9)
    assert trial_end(spec, _cost([1.0] * 9), 3.0) == 3
    assert trial_end(spec, _cost([1.0] * 2), 3.0) == 2  # its own recipe is shorter


def test_admission_cost_up_to_the_first_rung_and_to_the_end() -> None:
    spec = _spec("{type: asha, grace_period: 2, reduction_factor: 2, max_t: 8}", 4, 8)
    cost = _cost([1.0] * 8)
    admission = admission_cost(spec, cost, 8.0)
    assert admission.first_rung == cost_to_epoch(cost, 2)
    assert admission.to_end == cost_to_epoch(cost, 8)
    plain = admission_cost(_spec("{type: none}", 4, 8), cost, 8.0)
    assert plain.first_rung == plain.to_end == cost_to_epoch(cost, 8)
    assert math.isclose(admission.first_rung.device_s, 20.0)
