"""`rsearch validate`: search specs and recipe files, told apart; every problem at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rsearch.spec.names import cache_dir, timm_names
from tests.cli.helpers import QUICKSTART, ROOT, SPACES, fails_cleanly, invoke

SPEC = """\
name: small
objective: {metric: val_top1}
search: {algorithm: random, num_trials: 5}
scheduler: {type: asha}
base:
  model: {name: efficientnet_b0}
scaling: {type: compound, phi: {type: float, low: 0.0, high: 2.0}}
space:
  optim.lr: {type: float, low: 0.01, high: 0.1}
"""

RECIPE = """\
extends: LAPTOP
model: {name: resnet18}
epochs: 3
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text.replace("LAPTOP", str(SPACES / "presets" / "laptop_digits.yaml")))
    return path


def test_spec_is_named_a_search_spec(tmp_path: Path) -> None:
    path = _write(tmp_path, "spec.yaml", SPEC)
    res = invoke("validate", path)
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        f"ok {path}: search spec 'small' "
        "(random, 5 trials, 1 parameters, scaling compound, scheduler asha)\n"
    )


def test_recipe_is_named_a_recipe(tmp_path: Path) -> None:
    path = _write(tmp_path, "recipe.yaml", RECIPE)
    res = invoke("validate", path)
    assert res.exit_code == 0, res.output
    assert res.stdout == f"ok {path}: recipe (resnet18, digits, 3 epochs)\n"


def test_every_shipped_file_is_told_its_kind() -> None:
    specs = sorted(SPACES.glob("*.yaml"))
    presets = sorted((SPACES / "presets").glob("*.yaml"))
    res = invoke("validate", *specs, *presets)
    assert res.exit_code == 0, res.output
    kinds = {line.split(":")[0][3:]: line.split(": ", 1)[1] for line in res.stdout.splitlines()}
    assert all(kinds[str(p)].startswith("search spec ") for p in specs)
    assert all(kinds[str(p)].startswith("recipe (") for p in presets)


def test_spec_problems_all_at_once_with_places(tmp_path: Path) -> None:
    text = SPEC.replace("num_trials", "num_trails").replace("low: 0.01", "low: 0.5")
    path = _write(tmp_path, "spec.yaml", text)
    err = fails_cleanly("validate", path, expect=f"{path}:3:29: search.num_trails:", lines=3)
    assert f"{path}:9:3: space.optim.lr: low (0.5) must be below high (0.1)" in err
    assert err.rstrip().endswith("1 of 1 file(s) invalid")


def test_recipe_problems_all_at_once_with_places(tmp_path: Path) -> None:
    text = RECIPE.replace("resnet18", "resnet181") + "epochz: 3\noptim: {lr: -1}\n"
    path = _write(tmp_path, "recipe.yaml", text)
    err = fails_cleanly("validate", path, expect=f"{path}:2:9: model.name:", lines=4)
    assert "did you mean 'resnet18'" in err
    assert f"{path}:4:1: epochz: unknown key 'epochz' (did you mean 'epochs'?)" in err
    assert f"{path}:5:9: optim.lr:" in err


def test_missing_extended_recipe(tmp_path: Path) -> None:
    path = _write(tmp_path, "recipe.yaml", "extends: nowhere.yaml\nepochs: 2\n")
    fails_cleanly("validate", path, expect=f"{path}:1:1: extends: extended file not found", lines=2)


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.yaml", "# nothing yet\n")
    fails_cleanly("validate", path, expect=f"{path}:1:1: <top level>: file is empty", lines=2)


def test_file_of_both_kinds_is_not_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path, "both.yaml", "name: x\nobjective: {metric: val_top1}\nepochs: 2\n")
    fails_cleanly(
        "validate",
        path,
        expect="holds search-spec keys (name, objective) and recipe keys (epochs)",
        lines=2,
    )


def test_file_of_neither_kind_suggests_a_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "neither.yaml", "epochz: 2\n")
    err = fails_cleanly("validate", path, expect="neither a search spec nor a recipe", lines=2)
    assert "epochz (did you mean 'epochs'?)" in err


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    fails_cleanly("validate", tmp_path / "none.yaml", expect="file not found", lines=2)
    path = _write(tmp_path, "broken.yaml", "model: {name: resnet18\n")
    fails_cleanly("validate", path, expect="YAML syntax error", lines=2)


def test_good_and_bad_files_together(tmp_path: Path) -> None:
    good = _write(tmp_path, "recipe.yaml", RECIPE)
    bad = _write(tmp_path, "bad.yaml", "epochs: 0\n")
    res = invoke("validate", good, bad)
    assert res.exit_code == 2
    assert res.stdout == f"ok {good}: recipe (resnet18, digits, 3 epochs)\n"
    assert res.stderr.splitlines() == [
        f"{bad}:1:1: epochs: Input should be greater than or equal to 1",
        "1 of 2 file(s) invalid",
    ]


def test_validate_imports_no_heavy_library() -> None:
    """With the timm-name cache warm (as after any first use), validate needs no heavy library.

    The cache is this session's own (tests/conftest.py), so it is warmed here, not by chance.
    """
    timm_names.cache_clear()
    names = timm_names()  # lists the names through timm when this session's cache is empty
    assert (cache_dir() / f"timm-{names.version}-names.json").is_file()
    recipe = SPACES / "presets" / "rsb_a1.yaml"
    code = (
        "import sys; from rsearch.cli import app\n"
        f"try: app(['validate', {str(QUICKSTART)!r}, {str(recipe)!r}])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=os.environ, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "search spec 'quickstart'" in run.stdout and "recipe (resnet50," in run.stdout
