"""Recipe fields of imbalanced data: augment.strength's table, and refused combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rsearch.spec import Recipe, parse_spec_text
from rsearch.spec.data_section import DataConfig
from rsearch.spec.recipe import AugmentConfig, LossConfig
from rsearch.spec.strength import strength_table
from rsearch.tune.sample import sample_trials

FIELDS = ("randaugment_layers", "randaugment_magnitude", "crop_scale_min", "random_erasing")


@pytest.mark.parametrize(
    ("strength", "expected"),
    [
        (0.0, (0, 0.0, 1.0, 0.0)),
        (0.5, (2, 5.0, 0.54, 0.125)),
        (1.0, (3, 10.0, 0.08, 0.25)),
        (0.3, (1, 3.0, 0.724, 0.075)),
    ],
)
def test_strength_maps_as_documented(strength: float, expected: tuple[float, ...]) -> None:
    augment = AugmentConfig(strength=strength)
    assert tuple(getattr(augment, name) for name in FIELDS) == pytest.approx(expected)
    assert tuple(strength_table(strength)[name] for name in FIELDS) == pytest.approx(expected)
    assert augment.hflip == 0.5 and augment.mixup == 0.0  # left alone


def test_no_strength_leaves_the_fields() -> None:
    augment = AugmentConfig(randaugment_layers=2, randaugment_magnitude=7, crop_scale_min=0.3)
    assert (augment.randaugment_layers, augment.randaugment_magnitude) == (2, 7.0)
    assert augment.crop_scale_min == 0.3 and augment.strength is None


def test_strength_refuses_a_conflicting_field() -> None:
    with pytest.raises(ValidationError, match="sets randaugment_magnitude to 5, but the recipe"):
        AugmentConfig(strength=0.5, randaugment_magnitude=7)


def test_strength_accepts_equal_fields_and_round_trips() -> None:
    recipe = Recipe.model_validate({"augment": {"strength": 0.5, "randaugment_layers": 2}})
    again = Recipe.model_validate(recipe.model_dump(mode="json"))  # a run's resolved recipe
    assert again == recipe and again.augment.crop_scale_min == pytest.approx(0.54)


@pytest.mark.parametrize("base", ["", "base: {augment: {strength: 0.5}}\n"])
def test_strength_is_a_search_dimension(base: str) -> None:
    # Trials are built from the base recipe written out in full (every field present).
    spec = parse_spec_text(
        "name: s\nobjective: {metric: val_top1}\nsearch: {algorithm: random, num_trials: 4}\n"
        + base
        + "space:\n  augment.strength: {type: float, low: 0.0, high: 1.0}\n"
    )
    for trial in sample_trials(spec, 4):
        s = trial.params["augment.strength"]
        assert trial.recipe.augment.randaugment_magnitude == pytest.approx(10 * s)
        assert trial.recipe.augment.crop_scale_min == pytest.approx(1 - 0.92 * s)


def test_strength_with_a_default_valued_field_takes_the_table() -> None:
    # A field at its default cannot be told from one left out (a written-out recipe).
    augment = AugmentConfig(strength=0.5, crop_scale_min=0.08)
    assert augment.crop_scale_min == pytest.approx(0.54)


def test_bce_refuses_class_weights() -> None:
    with pytest.raises(ValidationError, match="class_weights applies to cross-entropy"):
        LossConfig(name="bce", class_weights="balanced")
    assert LossConfig(name="bce").class_weights == "none"


def test_class_weights_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        LossConfig(class_weights=[1.0, 0.0])
    assert LossConfig(class_weights=[1.0, 3]).class_weights == [1.0, 3.0]


def test_val_fraction_is_for_image_folders() -> None:
    with pytest.raises(ValidationError, match="dataset 'digits' brings its own validation"):
        DataConfig(val_fraction=0.2)
    assert DataConfig(dataset="image_folder", path="x", val_fraction=0.2).split_seed == 0


def test_balanced_sampler_refuses_repeated_augmentation() -> None:
    with pytest.raises(ValidationError, match="balanced cannot be combined with augment.repeated"):
        Recipe.model_validate({"data": {"sampler": "balanced"}, "augment": {"repeated_aug": 3}})
