"""Augmentation: the RandAugment adapter, batch crops and flips, erasing, eval transform."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data.auto_augment import RandAugment

from rsearch.spec.recipe import AugmentConfig
from rsearch.train.augment import (
    EvalTransform,
    Normalize,
    TrainTransform,
    build_randaugment,
    randaugment_config,
    random_flip,
    random_resized_crop,
)

CPU = torch.device("cpu")
HALF = (0.5, 0.5, 0.5)


def _images(n: int = 8, size: int = 24) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)


def test_randaugment_config_string() -> None:
    aug = AugmentConfig(randaugment_layers=2, randaugment_magnitude=9)
    assert randaugment_config(aug) == "rand-m9-n2-mstd0.5-inc1"
    aug = AugmentConfig(
        randaugment_layers=3,
        randaugment_magnitude=15,
        randaugment_magnitude_std=0,
        randaugment_increasing=False,
    )
    assert randaugment_config(aug) == "rand-m15-n3-mstd0-inc0-mmax15"


def test_build_randaugment_uses_the_exact_fields() -> None:
    assert build_randaugment(AugmentConfig(), 32, HALF) is None  # 0 layers: off
    aug = AugmentConfig(randaugment_layers=3, randaugment_magnitude=7.5)
    transform = build_randaugment(aug, 32, HALF)
    assert isinstance(transform, RandAugment)
    assert transform.num_layers == 3
    assert {op.magnitude for op in transform.ops} == {7.5}
    assert {op.magnitude_std for op in transform.ops} == {0.5}
    assert any("Increasing" in op.name for op in transform.ops)


@pytest.mark.parametrize(
    ("magnitude", "increasing", "op_name"),
    [(10.0, True, "PosterizeIncreasing"), (0.0, False, "Posterize")],
)
def test_posterize_at_zero_bits_gives_black_not_a_crash(
    magnitude: float, increasing: bool, op_name: str
) -> None:
    # Both ends ask timm's posterize for 0 bits, which Pillow refuses (a trial died of it).
    aug = AugmentConfig(
        randaugment_layers=1,
        randaugment_magnitude=magnitude,
        randaugment_magnitude_std=0.0,
        randaugment_increasing=increasing,
    )
    transform = build_randaugment(aug, 16, HALF)
    assert isinstance(transform, RandAugment)
    (op,) = [op for op in transform.ops if op.name == op_name]
    op.prob = 1.0
    image = Image.fromarray(np.full((16, 16, 3), 200, dtype=np.uint8))
    assert np.asarray(op(image)).max() == 0
    aug = AugmentConfig(
        randaugment_layers=1, randaugment_magnitude=5.0, randaugment_magnitude_std=0
    )
    (op,) = [op for op in build_randaugment(aug, 16, HALF).ops if op.name == "PosterizeIncreasing"]
    op.prob = 1.0
    assert np.asarray(op(image)).max() == 192  # 2 bits kept: timm's own posterize


def test_randaugment_changes_images() -> None:
    # timm's RandAugment draws from python's and numpy's generators
    random.seed(0)
    np.random.seed(0)
    images = _images(32)
    plain = AugmentConfig(random_resized_crop=False, hflip=0.0)
    with_ra = AugmentConfig(
        random_resized_crop=False, hflip=0.0, randaugment_layers=2, randaugment_magnitude=9
    )
    normalize = Normalize(HALF, HALF, CPU)
    labels = torch.zeros(32, dtype=torch.long)
    off = TrainTransform(plain, 24, normalize, True, None, False)(images, labels)[0]
    ra = build_randaugment(with_ra, 24, HALF)
    on = TrainTransform(with_ra, 24, normalize, True, None, False, ra)(images, labels)[0]
    assert torch.allclose(off, normalize(images))  # without RandAugment: unchanged
    changed = (on - off).abs().flatten(1).amax(dim=1) > 0.05
    assert changed.sum() >= 16


def test_random_resized_crop_is_per_image() -> None:
    torch.manual_seed(0)
    same = _images(1).float().expand(16, -1, -1, -1)
    out = random_resized_crop(same, 12, scale_min=0.08, hflip=0.5)
    assert out.shape == (16, 3, 12, 12)
    assert out.min() >= 0 and out.max() <= 255
    distinct = {tuple(o.flatten()[:20].tolist()) for o in out}
    assert len(distinct) == 16  # every image got its own crop


def test_full_crop_with_flip_is_a_mirror() -> None:
    x = _images(4).float()
    # scale 1 with the aspect ratio clamped to the image: the crop is the whole image
    torch.manual_seed(0)
    out = random_resized_crop(x, 24, scale_min=1.0, hflip=1.0)
    assert torch.allclose(out, x.flip(-1), atol=1e-3)
    assert torch.equal(random_flip(x, 1.0), x.flip(-1))
    assert torch.equal(random_flip(x, 0.0), x)


def test_random_erasing_erases() -> None:
    torch.manual_seed(0)
    images = _images()
    normalize = Normalize(HALF, HALF, CPU)
    aug = AugmentConfig(random_resized_crop=False, hflip=0.0, random_erasing=1.0)
    out = TrainTransform(aug, 24, normalize, True, None, False)(
        images, torch.zeros(8, dtype=torch.long)
    )[0]
    changed = (out != normalize(images)).flatten(1).float().mean(dim=1)
    assert (changed > 0.01).all()  # every image (p=1) lost a patch
    assert (changed < 0.6).all()  # ...but not all of it


def test_normalize_matches_mean_and_std() -> None:
    normalize = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), CPU)
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(normalize(x)[0, :, 0, 0], expected)


def test_eval_transform_crops_resizes_and_lays_out() -> None:
    x = torch.zeros(2, 3, 40, 40, dtype=torch.uint8)
    x[:, :, 10:30, 10:30] = 255  # a bright centre, dark border
    evaluate = EvalTransform(20, 0.5, Normalize(HALF, HALF, CPU), True, channels_last=True)
    out = evaluate(x)
    assert out.shape == (2, 3, 20, 20)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, torch.ones_like(out))  # crop_pct 0.5 keeps only the centre
