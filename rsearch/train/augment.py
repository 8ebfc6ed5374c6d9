"""Augmentation: batch-wise tensor ops on the device for in-memory data, timm's PIL transforms
for streamed data, and the one adapter that turns the recipe's RandAugment fields into timm's
RandAugment.

The default path (random-resized crop and flip) is a single grid_sample over the whole batch,
so augmentation costs about a millisecond a batch and never starves the model. Only RandAugment
(PIL-based in timm) runs per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data.auto_augment import posterize, rand_augment_transform
from timm.data.mixup import Mixup
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import MaybePILToTensor, RandomResizedCropAndInterpolation
from torchvision import transforms as T

from rsearch.spec.recipe import AugmentConfig

PilTransform = Callable[[Image.Image], Image.Image]

_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))
"""Aspect-ratio range of the random-resized crop (timm's and torchvision's default)."""

_TIMM_MAX_MAGNITUDE = 10
"""timm clips RandAugment magnitudes to this unless told a larger `mmax`."""


def randaugment_config(aug: AugmentConfig) -> str:
    """timm's RandAugment config string for the recipe's fields, e.g. 'rand-m9-n2-mstd0.5-inc1'.

    This is the only place the string is built. timm parses the magnitude as an integer, so it
    is rounded here and the exact value is set on the ops by build_randaugment.
    """
    magnitude = aug.randaugment_magnitude
    parts = [
        f"rand-m{round(magnitude)}",
        f"n{aug.randaugment_layers}",
        f"mstd{aug.randaugment_magnitude_std:g}",
        f"inc{int(aug.randaugment_increasing)}",
    ]
    if magnitude > _TIMM_MAX_MAGNITUDE:  # ResNet-RS goes up to 15; timm would clip at 10
        parts.append(f"mmax{math.ceil(magnitude)}")
    return "-".join(parts)


def build_randaugment(
    aug: AugmentConfig, image_size: int, mean: tuple[float, ...]
) -> PilTransform | None:
    """timm's RandAugment for the recipe, or None when randaugment_layers is 0.

    Args:
        aug: the recipe's augmentation section.
        image_size: side of the images it is applied to (sets the translation range).
        mean: normalisation mean (0-1), the fill colour of rotations and shears.
    """
    if aug.randaugment_layers == 0:
        return None
    hparams = {
        "translate_const": int(image_size * 0.45),  # timm's choice for its own pipelines
        "img_mean": tuple(min(255, round(255 * m)) for m in mean),
    }
    transform = rand_augment_transform(randaugment_config(aug), hparams)
    for op in transform.ops:  # the exact (possibly fractional) magnitude, see randaugment_config
        op.magnitude = aug.randaugment_magnitude
        if op.aug_fn is posterize:
            op.aug_fn = posterize_to_zero_bits
    return transform


def posterize_to_zero_bits(img: Image.Image, bits_to_keep: int, **kwargs: Any) -> Image.Image:
    """timm's posterize, also at 0 bits kept (a black image, as TensorFlow's RandAugment).

    timm asks for 0 bits at the strongest magnitude of the increasing op set (10) and the
    weakest of the plain one (below 2.5), both reached by per-op magnitude noise; Pillow 10+
    refuses 0 bits, which crashed a trial mid-epoch.
    """
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return posterize(img, bits_to_keep, **kwargs)


def pil_train_transform(
    aug: AugmentConfig, size: int, interpolation: str, mean: tuple[float, ...]
) -> Callable[[Image.Image], torch.Tensor]:
    """Per-image train transform for streamed data: crop/resize, flip, RandAugment -> uint8 CHW.

    Normalisation and random erasing happen later, batch-wise on the device (TrainTransform).
    """
    if aug.random_resized_crop:
        crop: list[Any] = [
            RandomResizedCropAndInterpolation(
                size, scale=(aug.crop_scale_min, 1.0), interpolation=interpolation
            )
        ]
    else:
        crop = [T.Resize(size), T.CenterCrop(size)]
    steps = [*crop, T.RandomHorizontalFlip(aug.hflip)]
    randaugment = build_randaugment(aug, size, mean)
    if randaugment is not None:
        steps.append(randaugment)
    return T.Compose([*steps, MaybePILToTensor()])


def pil_eval_transform(
    size: int, crop_pct: float, interpolation: str
) -> Callable[[Image.Image], torch.Tensor]:
    """timm's evaluation transform (resize, centre crop) for streamed data -> uint8 CHW."""
    from timm.data import create_transform

    return create_transform(
        size, is_training=False, crop_pct=crop_pct, interpolation=interpolation, use_prefetcher=True
    )


def random_resized_crop(
    images: torch.Tensor, size: int, scale_min: float, hflip: float
) -> torch.Tensor:
    """Random-resized crop and horizontal flip of every image of a batch in one grid_sample.

    Crop areas are uniform in [scale_min, 1] of the image and log aspect ratios uniform in
    [3/4, 4/3] as in timm. Where timm redraws a crop that does not fit in the image, its aspect
    ratio is clamped here to the nearest that fits at the same area, which keeps the batch
    vectorised (and makes scale 1 the whole image, as timm's fallback does).

    Args:
        images: float N x C x H x W batch.
        size: output side in pixels.
        scale_min: smallest crop area fraction.
        hflip: flip probability.
    """
    n, _, height, width = images.shape
    device = images.device
    area = torch.empty(n, device=device).uniform_(scale_min, 1.0) * (height * width)
    ratio = torch.empty(n, device=device).uniform_(*_LOG_RATIO).exp()
    ratio = torch.minimum(torch.maximum(ratio, area / height**2), width**2 / area)
    crop_w = (area * ratio).sqrt().clamp(max=width)
    crop_h = (area / ratio).sqrt().clamp(max=height)
    center_x = torch.rand(n, device=device) * (width - crop_w) + crop_w / 2
    center_y = torch.rand(n, device=device) * (height - crop_h) + crop_h / 2
    flip = torch.where(torch.rand(n, device=device) < hflip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    # affine_grid maps output coordinates in [-1, 1] to input ones: scale = crop / image side.
    theta[:, 0, 0] = crop_w / width * flip
    theta[:, 0, 2] = center_x / width * 2 - 1
    theta[:, 1, 1] = crop_h / height
    theta[:, 1, 2] = center_y / height * 2 - 1
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float batch to size x size (antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrink = images.shape[-1] > size
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=shrink)


def random_flip(images: torch.Tensor, hflip: float) -> torch.Tensor:
    """Flip each image of a batch horizontally with probability hflip."""
    if hflip <= 0:
        return images
    flip = torch.rand(images.shape[0], device=images.device) < hflip
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def center_crop(images: torch.Tensor, crop_pct: float) -> torch.Tensor:
    """The central crop_pct of each image side."""
    if crop_pct >= 1.0:
        return images
    height, width = images.shape[-2:]
    crop_h, crop_w = max(1, round(height * crop_pct)), max(1, round(width * crop_pct))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return images[..., top : top + crop_h, left : left + crop_w]


def apply_per_image(images: torch.Tensor, transform: PilTransform) -> torch.Tensor:
    """Run a PIL transform on every image of a float 0-255 batch; returns a float batch."""
    pixels = images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = [np.asarray(transform(Image.fromarray(p)), dtype=np.uint8) for p in pixels]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(images.device).float()


class Normalize:
    """uint8 (or 0-255 float) batch -> float batch normalised by mean and std (0-1 units)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, -1, 1, 1)
        self.shift = (torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(
            1, -1, 1, 1
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # Out of place: a float input may be a caller's tensor.
        return images.float() * self.scale - self.shift


class TrainTransform:
    """A training batch as the model takes it: augmented, normalised, mixed, laid out.

    In-memory batches arrive at their stored size and get the crop/flip here on the device;
    streamed batches arrive already cropped and flipped by their loader workers.
    """

    def __init__(
        self,
        aug: AugmentConfig,
        size: int,
        normalize: Normalize,
        spatial: bool,
        mixup: Mixup | None,
        channels_last: bool,
        randaugment: PilTransform | None = None,
    ):
        """Build the pipeline.

        Args:
            aug: the recipe's augmentation section.
            size: training resolution.
            normalize: the model's normalisation.
            spatial: crop/flip/RandAugment here (in-memory data) rather than in the loader.
            mixup: timm's Mixup/CutMix, or None.
            channels_last: hand the model channels_last batches.
            randaugment: the per-image RandAugment (only used when spatial).
        """
        self.aug = aug
        self.size = size
        self.normalize = normalize
        self.spatial = spatial
        self.mixup = mixup
        self.randaugment = randaugment if spatial else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.erase: RandomErasing | None = None
        if aug.random_erasing > 0:
            self.erase = RandomErasing(
                aug.random_erasing, mode="pixel", device=str(normalize.scale.device)
            )

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (model input, targets); targets are dense when mixup/CutMix is on."""
        x = self._spatial(images) if self.spatial else images
        x = self.normalize(x)
        if self.erase is not None:
            x = self.erase(x)
        targets = labels
        if self.mixup is not None:
            x, targets = self.mixup(x, labels)
        return x.contiguous(memory_format=self.memory_format), targets

    def _spatial(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if self.aug.random_resized_crop:
            x = random_resized_crop(x, self.size, self.aug.crop_scale_min, self.aug.hflip)
        else:
            x = random_flip(resize(x, self.size), self.aug.hflip)
        if self.randaugment is not None:
            x = apply_per_image(x, self.randaugment)
        return x


class EvalTransform:
    """An evaluation batch as the model takes it: centre crop, resize, normalise, layout."""

    def __init__(
        self, size: int, crop_pct: float, normalize: Normalize, spatial: bool, channels_last: bool
    ):
        """Build the pipeline.

        Args:
            size: evaluation resolution.
            crop_pct: centre-crop fraction.
            normalize: the model's normalisation.
            spatial: crop/resize here (in-memory data) rather than in the loader.
            channels_last: hand the model channels_last batches.
        """
        self.size = size
        self.crop_pct = crop_pct
        self.normalize = normalize
        self.spatial = spatial
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if self.spatial:
            x = resize(center_crop(x.float(), self.crop_pct), self.size)
        return self.normalize(x).contiguous(memory_format=self.memory_format)
