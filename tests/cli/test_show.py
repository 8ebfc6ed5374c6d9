"""`rsearch show`: the resolved spec as YAML; bad input is one message and exit 2."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.helpers import QUICKSTART, SPACES, fails_cleanly, invoke


def test_show_prints_resolved_spec() -> None:
    res = invoke("show", QUICKSTART)
    assert res.exit_code == 0, res.output
    shown = yaml.safe_load(res.stdout)
    assert shown["base"]["optim"]["momentum"] == 0.9  # default filled
    assert shown["objective"] == [{"metric": "val_top1", "mode": "max"}]


def test_show_applies_overrides() -> None:
    res = invoke("show", QUICKSTART, "--set", "search.num_trials=3", "--set", "base.epochs=1")
    assert res.exit_code == 0, res.output
    shown = yaml.safe_load(res.stdout)
    assert (shown["search"]["num_trials"], shown["base"]["epochs"]) == (3, 1)


def test_show_merges_extends(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    laptop = QUICKSTART.parent / "presets" / "laptop_digits.yaml"
    spec.write_text(f"name: s\nobjective: {{metric: val_loss}}\nbase: {{extends: {laptop}}}\n")
    res = invoke("show", spec)
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["base"]["epochs"] == 2  # from the preset


def test_show_missing_file(tmp_path: Path) -> None:
    fails_cleanly("show", tmp_path / "none.yaml", expect="none.yaml:1:1: <top level>: file not")


def test_show_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nobjective: {metric: val_top1}\nsearch: {num_trials: 0}\n")
    fails_cleanly(
        "show", spec, expect=f"error: {spec}:3:10: search.num_trials: Input should be greater"
    )


def test_show_bad_override() -> None:
    fails_cleanly(
        "show", QUICKSTART, "--set", "epochs", expect="--set expects path=value, got 'epochs'"
    )
    fails_cleanly(
        "show", QUICKSTART, "--set", "base.epochs=[1", expect="--set value is not valid YAML"
    )


def test_show_refuses_a_recipe_in_one_line() -> None:
    recipe = SPACES / "presets" / "laptop_digits.yaml"
    fails_cleanly("show", recipe, expect=f"{recipe}:1:1: <top level>: a recipe, not a search spec")
