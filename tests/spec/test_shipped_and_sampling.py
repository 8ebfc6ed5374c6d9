"""Shipped specs validate; dry-run sampling yields valid recipes and honours conditions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.spec import Recipe, load_recipe, load_spec, parse_spec_text
from rsearch.spec.names import cache_dir, timm_names
from rsearch.tune.sample import sample_trials

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "search_spaces").glob("*.yaml"))
PRESETS = sorted((ROOT / "search_spaces" / "presets").glob("*.yaml"))
runner = CliRunner()


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


def test_validate_cli_ok_and_errors(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["validate", str(ROOT / "search_spaces" / "quickstart.yaml")])
    assert ok.exit_code == 0 and ok.stdout.startswith("ok ")
    assert "search spec 'quickstart'" in ok.stdout
    preset = runner.invoke(app, ["validate", str(ROOT / "search_spaces/presets/rsb_a1.yaml")])
    assert preset.exit_code == 0 and "recipe (resnet50, digits, 600 epochs)" in preset.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nobjective: {metric: val_top1}\nsearch: {num_trails: 3}\n")
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:3:10: search.num_trails: unknown key" in res.stderr


def test_validate_imports_no_heavy_library() -> None:
    timm_names.cache_clear()
    names = timm_names()  # lists the names through timm when this session's cache is empty
    assert (cache_dir() / f"timm-{names.version}-names.json").is_file()
    code = (
        "import sys; from rsearch.cli import app\n"
        "try: app(['validate', 'search_spaces/quickstart.yaml'])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


def test_sample_cli_output_validates() -> None:
    res = runner.invoke(
        app, ["sample", str(ROOT / "search_spaces" / "quickstart.yaml"), "-n", "5", "--full"]
    )
    assert res.exit_code == 0, res.output
    docs = list(yaml.safe_load_all(res.stdout))
    assert [d["trial"] for d in docs] == [0, 1, 2, 3, 4]
    for doc in docs:
        recipe = Recipe.model_validate(doc["recipe"])
        assert recipe.optim.lr == doc["params"]["optim.lr"]
    # the warm-start recipe comes first, exactly
    assert docs[0]["params"]["optim.lr"] == 0.05


def test_sample_cli_bad_override_exits_2() -> None:
    res = runner.invoke(
        app, ["sample", str(ROOT / "search_spaces" / "quickstart.yaml"), "--set", "base.epochs=0"]
    )
    assert res.exit_code == 2 and "base.epochs" in res.stderr


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


def test_show_prints_resolved_spec() -> None:
    res = runner.invoke(app, ["show", str(ROOT / "search_spaces" / "quickstart.yaml")])
    assert res.exit_code == 0
    shown = yaml.safe_load(res.stdout)
    assert shown["base"]["optim"]["momentum"] == 0.9  # default filled
    assert shown["objective"] == [{"metric": "val_top1", "mode": "max"}]
