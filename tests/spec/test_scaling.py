"""Scaling strategies: validation with file:line, the values they set, the compound constraint."""

from __future__ import annotations

import math

import optuna
import pytest

from rsearch.errors import UserError
from rsearch.spec import SpecError, parse_spec_text
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import (
    RESNET_RS_LAYERS,
    DepthFirstScaling,
    recipe_params,
    resnet_rs_regularization,
)
from rsearch.tune import space as space_module
from rsearch.tune.sample import sample_trials
from rsearch.tune.searchers import create_study

COMPOUND = """\
name: compound
objective: {metric: val_top1}
search: {algorithm: ALGO, num_trials: 60, seed: 3}
base:
  model: {name: efficientnet_b0}
  data: {image_size: 32}
scaling:
  type: compound
  alpha: {type: float, low: 1.0, high: 1.4}
  beta: {type: float, low: 1.0, high: 1.3}
  gamma: {type: float, low: 1.0, high: 1.4}
  phi: PHI
  tolerance: 0.05
"""


def compound_spec(algorithm: str = "random", phi: str = "1") -> str:
    return COMPOUND.replace("ALGO", algorithm).replace("PHI", phi)


@pytest.mark.parametrize("algorithm", ["random", "tpe", "cmaes", "nsga2", "gp"])
def test_compound_constraint_holds_for_every_sampled_trial(algorithm: str) -> None:
    spec = parse_spec_text(compound_spec(algorithm, "{type: int, low: 0, high: 3}"))
    trials = sample_trials(spec, 60)
    assert len(trials) == 60
    for t in trials:
        s = t.scaling
        product = s["alpha"] * s["beta"] ** 2 * s["gamma"] ** 2
        assert product == pytest.approx(s["product"])
        assert abs(product - 2.0) <= 0.05 * 2.0 + 1e-9, s
        assert 1.0 <= s["gamma"] <= 1.4
        assert t.recipe.model.depth_multiplier == pytest.approx(s["alpha"] ** s["phi"])
        assert t.recipe.model.width_multiplier == pytest.approx(s["beta"] ** s["phi"])
        size = round(32 * s["gamma"] ** s["phi"])
        assert t.recipe.data.image_size == size == t.recipe.data.eval_image_size
    # the draws spread over the band, not onto one point
    assert len({round(t.scaling["alpha"], 3) for t in trials}) > 10


def test_compound_refusals_are_pruned_with_a_reason() -> None:
    # alpha * beta^2 can exceed 2.1 here, leaving no gamma >= 1: those proposals are refused
    spec = parse_spec_text(compound_spec())
    study = create_study(spec)
    for _ in range(40):
        space_module.propose(study, spec)
    refused = [t for t in study.trials if "rejected" in t.user_attrs]
    assert refused, "the ranges leave infeasible corners; some proposal must have hit one"
    for t in refused:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert "no gamma" in t.user_attrs["rejected"]
        assert t.params["scaling.alpha"] * t.params["scaling.beta"] ** 2 > 2.1 / 1.4**2


def test_fixed_gamma_is_checked_and_persistent_refusal_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (
        compound_spec()
        .replace("gamma: {type: float, low: 1.0, high: 1.4}", "gamma: 1.0")
        .replace("tolerance: 0.05", "tolerance: 0.000001")
    )
    spec = parse_spec_text(text)
    monkeypatch.setattr(space_module, "MAX_REJECTED", 5)
    with pytest.raises(UserError, match="5 proposals in a row were refused"):
        sample_trials(spec, 1)


def test_paper_values_fixed() -> None:
    spec = parse_spec_text(compound_spec().split("scaling:")[0] + "scaling: {type: compound}\n")
    (t,) = sample_trials(spec, 1)
    assert t.params == {
        "model.depth_multiplier": 1.2,
        "model.width_multiplier": 1.1,
        "data.image_size": round(32 * 1.15),
        "data.eval_image_size": round(32 * 1.15),
    }
    assert t.scaling["product"] == pytest.approx(1.2 * 1.1**2 * 1.15**2)


def test_stored_trials_give_back_their_recipe_values() -> None:
    spec = parse_spec_text(compound_spec("tpe"))
    study = create_study(spec)
    for _ in range(10):
        trial, params = space_module.propose(study, spec)
        assert recipe_params(trial.params, spec.scaling, spec.base) == params


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(text)
    return [str(p) for p in caught.value.problems]


def test_infeasible_ranges_are_a_spec_error_with_its_line() -> None:
    text = compound_spec().replace("high: 1.4}", "high: 1.01}").replace("high: 1.3}", "high: 1.01}")
    (problem,) = errors_of(text)
    assert problem.startswith("<string>:8:3: ")
    assert "scaling.type: alpha * beta^2 * gamma^2 ranges over" in problem


def test_scaling_problems_name_their_fields() -> None:
    text = (
        compound_spec()
        .replace("tolerance: 0.05", "tolerance: 2\n  bogus: 1")
        .replace("search: {algorithm: random", "scheduler: {type: pbt}\nsearch: {algorithm: random")
        + "space:\n  data.image_size: {type: int, low: 16, high: 32}\n"
    )
    problems = errors_of(text)
    joined = "\n".join(problems)
    assert "scaling.tolerance: Input should be less than 1" in joined
    assert "scaling.bogus: unknown key" in joined
    assert "space.data.image_size: data.image_size is set by scaling compound" in joined
    assert "pbt cannot change a model's size" in joined
    assert all(p.startswith("<string>:") for p in problems)


DEPTH_FIRST = """\
name: rs
objective: {metric: val_top1}
search: {algorithm: grid, num_trials: 6}
base:
  model: {name: resnetrs50}
  epochs: EPOCHS
scaling:
  type: depth_first
  depths: [50, 101, 200]
  widths: [1.0, 1.5]
  resolutions: [160, 320]
  scale: by_epochs
  overfit_epochs: 100
  regularization: resnet_rs
"""


def test_depth_first_grid_covers_depth_by_resolution_with_paper_regularisation() -> None:
    spec = parse_spec_text(DEPTH_FIRST.replace("EPOCHS", "350"))
    trials = sample_trials(spec, 6)
    pairs = {(t.scaling["depth"], t.recipe.data.image_size) for t in trials}
    assert pairs == {(d, r) for d in (50, 101, 200) for r in (160, 320)}
    for t in trials:
        depth, size = t.scaling["depth"], t.recipe.data.image_size
        assert t.recipe.model.layers == RESNET_RS_LAYERS[depth]
        assert t.recipe.model.width_multiplier == 1.0
        assert t.recipe.model.drop_path_rate == (0.1 if depth >= 200 else 0.0)
        assert t.recipe.model.drop_rate == (0.4 if size >= 320 else 0.25)
        assert t.recipe.augment.randaugment_magnitude == (10.0 if size <= 160 else 15.0)


def test_short_training_scales_width_not_depth() -> None:
    spec = parse_spec_text(
        DEPTH_FIRST.replace("EPOCHS", "10").replace("num_trials: 6", "num_trials: 4")
    )
    trials = sample_trials(spec, 4)
    assert {t.recipe.model.width_multiplier for t in trials} == {1.0, 1.5}
    assert all(t.recipe.model.layers is None and "depth" not in t.scaling for t in trials)


def test_depth_first_refusals() -> None:
    spec = DEPTH_FIRST.replace("EPOCHS", "350")
    (problem,) = errors_of(spec.replace("[50, 101, 200]", "[50, 77]"))
    assert problem.startswith("<string>:9:3: scaling.depths: no ResNet-RS layout for depth [77]")
    (problem,) = errors_of(spec.replace("  overfit_epochs: 100\n", ""))
    assert problem == "<string>:7:1: scaling: scale: by_epochs needs overfit_epochs"
    problems = errors_of(
        DEPTH_FIRST.replace("EPOCHS", "350").replace("resnetrs50", "efficientnet_b0")
    )
    assert any("scaling.depths: depth_first sets model.layers" in p for p in problems)


def test_regularisation_rule_matches_the_paper_table() -> None:
    # (depth, px) -> (RandAugment magnitude, dropout, stochastic depth), arXiv:2103.07579
    table = {
        (50, 160): (10, 0.25, 0.0),
        (101, 160): (10, 0.25, 0.0),
        (101, 192): (15, 0.25, 0.0),
        (152, 192): (15, 0.25, 0.0),
        (152, 256): (15, 0.25, 0.0),
        (200, 256): (15, 0.25, 0.1),
        (270, 256): (15, 0.25, 0.1),
        (350, 256): (15, 0.25, 0.1),
        (350, 320): (15, 0.4, 0.1),
        (420, 320): (15, 0.4, 0.1),
    }
    for (depth, size), (mag, drop, sd) in table.items():
        assert resnet_rs_regularization(depth, size) == {
            "augment.randaugment_magnitude": mag,
            "model.drop_rate": drop,
            "model.drop_path_rate": sd,
        }


def test_scales_depth_rule() -> None:
    rule = DepthFirstScaling(type="depth_first", scale="by_epochs", overfit_epochs=100)
    assert rule.scales_depth(350) and not rule.scales_depth(10)
    assert DepthFirstScaling(type="depth_first", scale="width").scales_depth(350) is False


SHRINK = """\
name: tiny
objective: {metric: val_top1}
search: {algorithm: random, num_trials: 20}
base: {model: {name: efficientnet_b0}, data: {image_size: 224}}
scaling:
  type: shrink
  resolution: {type: float, low: 0.4, high: 1.0}
  width: 0.5
  depth: {type: categorical, choices: [0.6, 0.8]}
"""


def test_shrink_sets_resolution_width_depth() -> None:
    trials = sample_trials(parse_spec_text(SHRINK), 20)
    for t in trials:
        r = t.scaling["resolution"]
        assert t.recipe.data.image_size == math.floor(224 * r + 1e-9)
        assert t.recipe.model.width_multiplier == 0.5
        assert t.recipe.model.depth_multiplier in (0.6, 0.8)


def test_base_without_scaling_is_untouched() -> None:
    assert recipe_params({"optim.lr": 0.1}, None, Recipe()) == {"optim.lr": 0.1}


def test_grid_search_tells_its_last_point() -> None:
    # Optuna's GridSampler calls study.stop() after the last point, outside optimize(): raises
    spec = parse_spec_text(DEPTH_FIRST.replace("EPOCHS", "350"))
    study = create_study(spec)
    for _ in range(6):
        trial, _ = space_module.propose(study, spec)
        study.tell(trial, 1.0)
    assert len(study.trials) == 6
