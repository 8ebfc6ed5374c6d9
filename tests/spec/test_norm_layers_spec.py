"""model.norm_layer / norm_groups / act_layer: refused at spec time, with file:line, when the
model cannot take them, in the base recipe and in every searched choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import Problem, SpecError, load_spec
from rsearch.spec.layers import (
    ACTIVATIONS,
    NORMS_BY_FAMILY,
    family_of,
)

SPEC = """\
name: t
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 4}
scheduler: {type: none}
resources: {workers_per_trial: 1, cpus_per_worker: 1}
base:
  model: {name: MODEL, NORM}
  data: {dataset: digits, image_size: 32}
  epochs: 1
space:
  optim.lr: {type: float, low: 0.01, high: 0.1, log: true}
SPACE"""


def _spec(tmp_path: Path, model: str, norm: str = "", space: str = "") -> Path:
    text = SPEC.replace("MODEL", model).replace(", NORM", f", {norm}" if norm else "")
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("SPACE", space))
    return path


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def _one(problems: list[Problem], field: str) -> Problem:
    matching = [p for p in problems if p.field == field]
    assert len(matching) == 1, [str(p) for p in problems]
    assert matching[0].where is not None and matching[0].where.file.endswith("spec.yaml")
    return matching[0]


def test_families_of_the_installed_timm() -> None:
    assert family_of("resnet18") == "resnet"
    assert family_of("resnet50d.ra2_in1k") == "resnet"
    assert family_of("resnetv2_50d_evos") == "resnetv2"
    assert family_of("efficientnet_b0") is None
    assert set(NORMS_BY_FAMILY["resnet"]) < set(NORMS_BY_FAMILY["resnetv2"])


@pytest.mark.parametrize(
    ("model", "norm", "field", "fragment"),
    [
        ("resnet18", "norm_layer: evonorm_s0", "base.model.norm_layer", "only ResNetV2"),
        ("efficientnet_b0", "norm_layer: groupnorm", "base.model.norm_layer", "does not take"),
        ("efficientnet_b0", "act_layer: silu", "base.model.act_layer", "does not take"),
        ("resnetv2_18", "norm_layer: evonorm_b0, act_layer: gelu", "base.model.act_layer", "own"),
        ("resnetv2_50d_evos", "act_layer: silu", "base.model.act_layer", "'evonorm_s0' has its"),
        ("resnet18", "norm_groups: 8", "base.model.norm_groups", "grouped norm layers"),
        ("resnet18", "norm_layer: batchnorm, norm_groups: 8", "base.model.norm_groups", "not"),
        ("resnet18", "norm_layer: batchnrm", "base.model.norm_layer", "did you mean 'batchnorm'"),
        ("resnet18", "act_layer: swsh", "base.model.act_layer", "did you mean 'swish'"),
    ],
)
def test_base_recipe_refused_at_its_line(
    tmp_path: Path, model: str, norm: str, field: str, fragment: str
) -> None:
    problem = _one(_problems(_spec(tmp_path, model, norm)), field)
    assert fragment in problem.message
    assert problem.where is not None and problem.where.line == 7


def test_accepted_base_recipes_validate(tmp_path: Path) -> None:
    for model, norm in [
        ("resnet18", "norm_layer: groupnorm, norm_groups: 8, act_layer: silu"),
        ("resnetv2_18", "norm_layer: evonorm_s0, norm_groups: 16"),
        ("resnetv2_18", "norm_layer: frn, act_layer: mish"),
        ("resnetv2_50d_gn", "act_layer: gelu"),
    ]:
        spec = load_spec(_spec(tmp_path, model, norm))
        assert spec.base.model.name == model


def test_searched_norm_choice_checked_against_the_model(tmp_path: Path) -> None:
    space = "  model.norm_layer: {type: categorical, choices: [batchnorm, groupnorm, evonorm_b0]}\n"
    problem = _one(
        _problems(_spec(tmp_path, "resnet18", space=space)), "space.model.norm_layer.choices.2"
    )
    assert "only ResNetV2" in problem.message
    assert problem.where is not None and problem.where.line == 12


def test_searched_model_checked_against_the_base_norm(tmp_path: Path) -> None:
    space = "  model.name: {type: categorical, choices: [resnet18, resnetv2_18, efficientnet_b0]}\n"
    problems = _problems(_spec(tmp_path, "resnet18", "norm_layer: groupnorm", space))
    problem = _one(problems, "space.model.name.choices.2")
    assert "'efficientnet_b0' does not take a norm_layer" in problem.message
    assert problem.where is not None and problem.where.line == 12


def test_searched_norm_checked_against_each_searched_model(tmp_path: Path) -> None:
    space = (
        "  model.name: {type: categorical, choices: [resnetv2_18, resnet18]}\n"
        "  model.norm_layer: {type: categorical, choices: [batchnorm, evonorm_s0]}\n"
    )
    problem = _one(
        _problems(_spec(tmp_path, "resnetv2_18", space=space)), "space.model.norm_layer.choices.1"
    )
    assert "'resnet18' accepts" in problem.message
    assert problem.where is not None and problem.where.line == 13


def test_searched_act_against_searched_norm_and_its_condition(tmp_path: Path) -> None:
    space = (
        "  model.norm_layer: {type: categorical, choices: [batchnorm, evonorm_s0]}\n"
        "  model.act_layer: {type: categorical, choices: [relu, silu]}\n"
    )
    problems = _problems(_spec(tmp_path, "resnetv2_18", space=space))
    assert {p.field for p in problems} == {
        "space.model.act_layer.choices.0",
        "space.model.act_layer.choices.1",
    }
    assert all("own nonlinearity" in p.message for p in problems)
    conditioned = space.replace("silu]}", "silu], when: {model.norm_layer: batchnorm}}")
    spec = load_spec(_spec(tmp_path, "resnetv2_18", space=conditioned))
    assert "model.act_layer" in spec.space


def test_searched_norm_against_the_base_act(tmp_path: Path) -> None:
    space = "  model.norm_layer: {type: categorical, choices: [groupnorm, evonorm_b0]}\n"
    problems = _problems(_spec(tmp_path, "resnetv2_18", "act_layer: silu", space))
    problem = _one(problems, "space.model.norm_layer.choices.1")
    assert "own nonlinearity" in problem.message


def test_every_table_choice_is_a_timm_factory_name() -> None:
    timm_layers = pytest.importorskip("timm.layers")
    for norm in NORMS_BY_FAMILY["resnet"]:
        assert timm_layers.get_norm_layer(norm) is not None
    for norm in NORMS_BY_FAMILY["resnetv2"]:
        assert timm_layers.get_norm_act_layer(norm) is not None
    for act in ACTIVATIONS:
        assert timm_layers.get_act_layer(act) is not None
