"""Seed-paper presets: each cites its source, encodes the published numbers, and trains at
laptop scale through its documented override."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from rsearch.spec import Recipe, load_recipe
from rsearch.spec.scaling import RESNET_RS_LAYERS, resnet_rs_regularization
from rsearch.train import fit
from rsearch.train.model import EFFICIENTNET_COEFFICIENTS

ROOT = Path(__file__).resolve().parents[2] / "search_spaces"
PRESETS = sorted(p for p in (ROOT / "presets").glob("*.yaml") if not p.stem.startswith("laptop"))
LAPTOP_LINE = re.compile(r"^#\s+extends: (\[presets/.+\.yaml\])$", re.MULTILINE)


def laptop_recipe(preset: Path, tmp_path: Path, overrides: tuple[str, ...] = ()) -> Recipe:
    """The preset layered with the laptop override its header documents."""
    (line,) = LAPTOP_LINE.findall(preset.read_text())
    recipe_file = tmp_path / "laptop.yaml"
    recipe_file.write_text(f"extends: {line.replace('presets/', str(ROOT / 'presets') + '/')}\n")
    return load_recipe(recipe_file, overrides)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_cites_its_source_and_runs_tiny_as_documented(preset: Path, tmp_path: Path) -> None:
    header = preset.read_text().split("\n\n")[0]
    assert re.search(r"arXiv:\d{4}\.\d{5}", header), "each preset cites its paper"
    recipe = laptop_recipe(preset, tmp_path)
    full = load_recipe(preset)
    assert recipe.model == full.model  # the laptop override keeps the architecture
    assert (recipe.data.dataset, recipe.data.image_size, recipe.precision) == ("digits", 32, "fp32")
    assert recipe.epochs <= 2


RSB = {  # epochs, lr, wd, smoothing, mixup, RandAugment m, repeats, drop path, train px
    "rsb_a1": (600, 5e-3, 0.01, 0.1, 0.2, 7, 3, 0.05, 224),
    "rsb_a2": (300, 5e-3, 0.02, 0.0, 0.1, 7, 3, 0.05, 224),
    "rsb_a3": (100, 8e-3, 0.02, 0.0, 0.1, 6, 1, 0.0, 160),
}


@pytest.mark.parametrize("name", sorted(RSB))
def test_rsb_presets_encode_the_paper(name: str) -> None:
    r = load_recipe(ROOT / "presets" / f"{name}.yaml")
    epochs, lr, wd, smoothing, mixup, magnitude, repeats, drop_path, size = RSB[name]
    assert (r.model.name, r.epochs, r.data.batch_size) == ("resnet50", epochs, 2048)
    assert (r.optim.name, r.optim.lr, r.optim.weight_decay) == ("lamb", lr, wd)
    assert (r.schedule.name, r.schedule.warmup_epochs) == ("cosine", 5)
    assert (r.loss.name, r.loss.bce_target_thresh, r.loss.label_smoothing) == (
        "bce",
        0.2,
        smoothing,
    )
    assert (r.augment.mixup, r.augment.cutmix) == (mixup, 1.0)
    assert r.augment.randaugment_magnitude == magnitude
    assert r.augment.randaugment_magnitude_std == 0.5 and r.augment.randaugment_increasing
    assert r.augment.repeated_aug == repeats and r.model.drop_path_rate == drop_path
    assert (r.data.image_size, r.data.eval_image_size, r.data.crop_pct) == (size, 224, 0.95)
    assert not r.ema.enabled


RS_RESOLUTION = {50: 160, 101: 192, 152: 256, 200: 256, 270: 256, 350: 320, 420: 320}


@pytest.mark.parametrize("depth", sorted(RESNET_RS_LAYERS))
def test_resnet_rs_presets_encode_the_paper(depth: int) -> None:
    r = load_recipe(ROOT / "presets" / f"resnet_rs_{depth}.yaml")
    size = RS_RESOLUTION[depth]
    assert r.model.name == f"resnetrs{depth}" and r.data.image_size == size
    assert (r.optim.name, r.optim.momentum, r.optim.weight_decay) == ("momentum", 0.9, 4e-5)
    assert r.optim.lr == pytest.approx(0.1 * r.data.batch_size / 256)
    assert (r.schedule.name, r.epochs, r.loss.label_smoothing) == ("cosine", 350, 0.1)
    assert (r.ema.enabled, r.ema.decay, r.precision) == (True, 0.9999, "bf16")
    assert r.augment.randaugment_layers == 2
    regularization = resnet_rs_regularization(depth, size)
    assert r.augment.randaugment_magnitude == regularization["augment.randaugment_magnitude"]
    assert r.model.drop_rate == regularization["model.drop_rate"]
    assert r.model.drop_path_rate == regularization["model.drop_path_rate"]


EFFICIENTNET = {  # width, depth, resolution, dropout
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 300, 0.3),
    4: (1.4, 1.8, 380, 0.4),
    5: (1.6, 2.2, 456, 0.4),
    6: (1.8, 2.6, 528, 0.5),
    7: (2.0, 3.1, 600, 0.5),
}
TINYNET = {"a": (0.86, 1.0, 1.2), "b": (0.84, 0.75, 1.1), "c": (0.825, 0.54, 0.85),
           "d": (0.68, 0.54, 0.695), "e": (0.475, 0.51, 0.60)}  # fmt: skip


@pytest.mark.parametrize("b", sorted(EFFICIENTNET))
def test_efficientnet_presets_encode_the_paper(b: int) -> None:
    r = load_recipe(ROOT / "presets" / f"efficientnet_b{b}.yaml")
    width, depth, size, dropout = EFFICIENTNET[b]
    assert EFFICIENTNET_COEFFICIENTS[r.model.name] == (width, depth)
    assert (r.data.image_size, r.data.eval_image_size, r.model.drop_rate) == (size, size, dropout)


@pytest.mark.parametrize("k", sorted(TINYNET))
def test_tinynet_presets_encode_the_paper(k: str) -> None:
    r = load_recipe(ROOT / "presets" / f"tinynet_{k}.yaml")
    resolution, width, depth = TINYNET[k]
    assert EFFICIENTNET_COEFFICIENTS[r.model.name] == (width, depth)
    assert r.data.image_size == math.floor(224 * resolution)


def test_he2015_preset() -> None:
    r = load_recipe(ROOT / "presets" / "he2015_resnet50.yaml")
    assert (r.model.name, r.epochs, r.optim.lr, r.optim.weight_decay) == ("resnet50", 90, 0.1, 1e-4)
    assert (r.schedule.name, r.schedule.decay_rate) == ("step", 0.1)


FAMILIES = ["rsb_a3", "resnet_rs_50", "efficientnet_b0", "tinynet_e", "he2015_resnet50"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_trains_one_short_epoch_at_laptop_scale(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rsearch.train.measure.MEASURE_SECONDS", 0.05)
    # a tenth of digits in batches of 16: one epoch is 9 steps, then the 360 validation images
    recipe = laptop_recipe(
        ROOT / "presets" / f"{name}.yaml",
        tmp_path,
        ("epochs=1", "data.fraction=0.1", "data.batch_size=16"),
    )
    metrics = fit(recipe)
    assert metrics["epoch"] == 1
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"])
    assert 0.0 <= metrics["val_top1"] <= 100.0
    assert ("ema_val_top1" in metrics) == recipe.ema.enabled
