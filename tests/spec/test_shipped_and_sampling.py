"""Shipped specs validate; dry-run sampling yields valid recipes and honours conditions.

The verbs themselves (validate, show, sample, train) are tested in tests/cli.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import Recipe, load_recipe, load_spec, parse_spec_text
from rsearch.tune.sample import sample_trials

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "search_spaces").glob("*.yaml"))
PRESETS = sorted((ROOT / "search_spaces" / "presets").glob("*.yaml"))


def test_specs_exist() -> None:
    assert any(p.name == "quickstart.yaml" for p in SPECS)


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_spec_validates(path: Path) -> None:
    spec = load_spec(path)
    assert path.read_text().startswith("#"), (
        "each shipped spec opens with a comment on how to run it"
    )
    for trial in sample_trials(spec, 3):
        Recipe.model_validate(trial.recipe.model_dump())


@pytest.mark.parametrize("path", PRESETS, ids=[p.name for p in PRESETS])
def test_shipped_preset_validates(path: Path) -> None:
    load_recipe(path)


CONDITIONAL = """
name: cond
objective: {metric: val_top1}
search: {algorithm: random, num_trials: 40, seed: 1}
space:
  optim.name: {type: categorical, choices: [sgd, sam, adamw]}
  optim.sam_rho: {type: float, low: 0.01, high: 0.2, when: {optim.name: sam}}
  optim.momentum: {type: float, low: 0.8, high: 0.99, when: {optim.name: [sgd, sam]}}
  optim.sam_base: {type: categorical, choices: [sgd, lamb], when: {optim.name: sam}}
"""


@pytest.mark.parametrize("algorithm", ["random", "tpe", "nsga2"])
def test_conditional_parameters_only_when_condition_holds(algorithm: str) -> None:
    spec = parse_spec_text(CONDITIONAL.replace("algorithm: random", f"algorithm: {algorithm}"))
    trials = sample_trials(spec, 40)
    names = {t.params["optim.name"] for t in trials}
    assert names == {"sgd", "sam", "adamw"}
    for t in trials:
        is_sam = t.params["optim.name"] == "sam"
        assert ("optim.sam_rho" in t.params) == is_sam
        assert ("optim.sam_base" in t.params) == is_sam
        assert ("optim.momentum" in t.params) == (t.params["optim.name"] != "adamw")
        if is_sam:
            assert t.recipe.optim.sam_rho == t.params["optim.sam_rho"]


def test_grid_sampler_covers_grid() -> None:
    spec = parse_spec_text(
        "name: g\nobjective: {metric: val_loss}\nsearch: {algorithm: grid, num_trials: 6}\n"
        "space:\n  optim.lr: {type: float, low: 0.1, high: 0.3, step: 0.1}\n"
        "  augment.mixup: {type: categorical, choices: [0.0, 0.2]}\n"
    )
    seen = {(t.params["optim.lr"], t.params["augment.mixup"]) for t in sample_trials(spec, 6)}
    assert seen == {(lr, m) for lr in (0.1, 0.2, 0.3) for m in (0.0, 0.2)}


def test_same_seed_same_trials() -> None:
    spec = load_spec(ROOT / "search_spaces" / "quickstart.yaml")
    first = [t.params for t in sample_trials(spec, 4)]
    assert first == [t.params for t in sample_trials(spec, 4)]
