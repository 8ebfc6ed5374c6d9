"""The seed-paper search spaces: `rsearch sample` draws valid trials from each, as specified."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.spec import Recipe, load_spec

ROOT = Path(__file__).resolve().parents[2] / "search_spaces"
SPACES = [
    "rsb_recipe_search",
    "resnet_rs_scaling",
    "efficientnet_compound",
    "tinynet_shrink",
    "speed_accuracy_pareto",
    "sam_vs_sgd",
    "regularization_vs_size",
]
runner = CliRunner()


def sampled(name: str, n: int) -> list[dict]:
    res = runner.invoke(app, ["sample", str(ROOT / f"{name}.yaml"), "-n", str(n), "--full"])
    assert res.exit_code == 0, res.output
    return list(yaml.safe_load_all(res.stdout))


@pytest.mark.parametrize("name", SPACES)
def test_space_header_and_sampled_recipes(name: str) -> None:
    text = (ROOT / f"{name}.yaml").read_text()
    header = text.split("\nname:")[0]
    assert "Question:" in header and f"rsearch run search_spaces/{name}.yaml" in header
    assert "Full scale" in header
    spec = load_spec(ROOT / f"{name}.yaml")
    docs = sampled(name, 4)
    assert len(docs) == 4
    for doc in docs:
        recipe = Recipe.model_validate(doc["recipe"])
        for path, value in doc["params"].items():
            section, field = path.split(".")
            assert getattr(getattr(recipe, section), field) == value
        for path, param in spec.space.items():
            if path in doc["params"]:
                assert param.contains(doc["params"][path])


def test_compound_space_keeps_its_constraint() -> None:
    spec = load_spec(ROOT / "efficientnet_compound.yaml")
    for doc in sampled("efficientnet_compound", 8):
        s = doc["scaling"]
        assert abs(s["alpha"] * s["beta"] ** 2 * s["gamma"] ** 2 - 2.0) <= 0.1 + 1e-9
        assert doc["recipe"]["model"]["depth_multiplier"] == pytest.approx(s["alpha"])
        assert doc["recipe"]["data"]["image_size"] == round(32 * s["gamma"])
    assert spec.scaling.type == "compound"


def test_sam_rho_only_for_sam() -> None:
    for doc in sampled("sam_vs_sgd", 6):
        assert ("optim.sam_rho" in doc["params"]) == (doc["params"]["optim.name"] == "sam")


def test_resnet_rs_grid_and_regularisation() -> None:
    docs = sampled("resnet_rs_scaling", 4)
    pairs = {(d["scaling"]["depth"], d["recipe"]["data"]["image_size"]) for d in docs}
    assert pairs == {(50, 24), (50, 32), (101, 24), (101, 32)}
    for d in docs:
        assert d["recipe"]["augment"]["randaugment_magnitude"] == 10.0  # <= 160 px
        assert d["recipe"]["model"]["drop_rate"] == 0.25
