"""The model budget (constraints.max_gflops / max_params_m): refused before training, told
to Optuna as PRUNED with the reason; sampling only ever yields trials within budget."""

from __future__ import annotations

import optuna
import pytest

from rsearch.rundir import COST_ATTR, REJECTED_ATTR
from rsearch.spec import Recipe, SpecError, parse_spec_text
from rsearch.spec.scaling import Constraints, Infeasible
from rsearch.spec.space_paths import apply_params
from rsearch.train.measure import model_cost
from rsearch.tune.budget import budget_check, check_budget
from rsearch.tune.sample import sample_trials
from rsearch.tune.searchers import create_study
from rsearch.tune.space import propose

SHRINK = """\
name: shrink
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 8, seed: 0}
base: {model: {name: efficientnet_b0}, data: {image_size: 32}}
scaling:
  type: shrink
  resolution: {type: float, low: 0.5, high: 1.0}
  width: {type: float, low: 0.5, high: 1.0}
  depth: {type: float, low: 0.5, high: 1.0}
constraints: {max_gflops: 0.004}
"""


def test_check_budget_refuses_with_the_cost_and_reason() -> None:
    recipe = Recipe.model_validate({"model": {"name": "resnet18"}, "data": {"image_size": 32}})
    cost = model_cost(recipe)
    check_budget(Constraints(max_params_m=cost["params_m"] * 1.01), recipe)  # within: no error
    with pytest.raises(Infeasible) as refused:
        check_budget(Constraints(max_params_m=1.0, max_gflops=cost["gflops"] / 2), recipe)
    reason = refused.value.reason
    assert reason.startswith("over budget: ")
    assert f"{cost['params_m']:.4g} M params > max_params_m 1" in reason
    assert "GFLOPs > max_gflops" in reason
    assert refused.value.attrs == {COST_ATTR: cost}


def test_no_limit_no_check() -> None:
    spec = parse_spec_text(SHRINK.replace("constraints: {max_gflops: 0.004}\n", ""))
    assert budget_check(spec) is None


def test_sampled_trials_are_within_budget_and_refusals_pruned() -> None:
    spec = parse_spec_text(SHRINK)
    study = create_study(spec)
    accept = budget_check(spec)
    accepted = [propose(study, spec, accept) for _ in range(4)]
    for _, params in accepted:  # the recipe the trial driver would train
        assert model_cost(apply_params(spec.base, params))["gflops"] <= 0.004
    refused = [t for t in study.trials if REJECTED_ATTR in t.user_attrs]
    assert refused, "half of B0's FLOPs at 32 px: some proposal of the box must be over it"
    for t in refused:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert "GFLOPs > max_gflops 0.004" in t.user_attrs[REJECTED_ATTR]
        assert t.user_attrs[COST_ATTR]["gflops"] > 0.004
    assert len(study.trials) == len(refused) + len(accepted)


def test_rsearch_sample_applies_the_budget() -> None:
    for t in sample_trials(parse_spec_text(SHRINK), 3):
        assert model_cost(t.recipe)["gflops"] <= 0.004


def test_budget_limits_must_be_positive() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(SHRINK.replace("max_gflops: 0.004", "max_gflops: 0, max_params: 3"))
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith("<string>:10:") and "constraints.max_gflops" in p for p in problems)
    assert any("constraints.max_params: unknown key" in p and "max_params_m" in p for p in problems)
