"""`rsearch sample`: a dry run drawing trial recipes; bad input is one message and exit 2."""

from __future__ import annotations

from pathlib import Path

import yaml

from rsearch.spec import Recipe
from tests.cli.helpers import QUICKSTART, fails_cleanly, invoke

COMPOUND = """\
name: compound
objective: {metric: val_top1}
search: {algorithm: random, num_trials: 4, seed: 1}
base:
  model: {name: efficientnet_b0}
  data: {image_size: 32}
scaling: {type: compound, phi: {type: float, low: 0.0, high: 1.0}}
"""


def test_sample_full_recipes_follow_the_params() -> None:
    res = invoke("sample", QUICKSTART, "-n", "5", "--full")
    assert res.exit_code == 0, res.output
    docs = list(yaml.safe_load_all(res.stdout))
    assert [d["trial"] for d in docs] == [0, 1, 2, 3, 4]
    for doc in docs:
        recipe = Recipe.model_validate(doc["recipe"])
        assert recipe.optim.lr == doc["params"]["optim.lr"]
    # the warm-start recipe comes first, exactly
    assert docs[0]["params"]["optim.lr"] == 0.00625


def test_sample_prints_searched_values_only_by_default() -> None:
    res = invoke("sample", QUICKSTART, "-n", "2")
    assert res.exit_code == 0, res.output
    docs = list(yaml.safe_load_all(res.stdout))
    assert [set(d) for d in docs] == [{"trial", "params"}] * 2
    assert set(docs[1]["params"]) == {
        "optim.lr",
        "optim.weight_decay",
        "loss.label_smoothing",
        "augment.mixup",
    }


def test_sample_shows_scaling_numbers(tmp_path: Path) -> None:
    spec = tmp_path / "compound.yaml"
    spec.write_text(COMPOUND)
    res = invoke("sample", spec, "-n", "3", "--full")
    assert res.exit_code == 0, res.output
    for doc in yaml.safe_load_all(res.stdout):
        scaling = doc["scaling"]
        assert set(scaling) >= {"alpha", "beta", "gamma", "phi", "product"}
        width = doc["recipe"]["model"]["width_multiplier"]
        assert width == scaling["beta"] ** scaling["phi"]


def test_sample_bad_override() -> None:
    fails_cleanly(
        "sample", QUICKSTART, "--set", "base.epochs=0", expect="base.epochs: Input should be"
    )


def test_sample_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(COMPOUND.replace("val_top1", "val_top2"))
    expect = f"error: {spec}:2:13: objective.0.metric: 'val_top2' is not allowed"
    fails_cleanly("sample", spec, expect=expect)


def test_sample_missing_file(tmp_path: Path) -> None:
    fails_cleanly("sample", tmp_path / "none.yaml", expect="file not found")


def test_sample_count_must_be_positive() -> None:
    res = invoke("sample", QUICKSTART, "-n", "0")
    assert res.exit_code == 2
    assert "Invalid value for '-n' / '--num'" in res.stderr
    assert "Traceback" not in res.output
