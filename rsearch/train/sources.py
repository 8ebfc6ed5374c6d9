"""Reading datasets from where they live: the bundled digits, random images, CIFAR batches on
disk, and train/ + val/ class folders.

Everything here returns either images held in memory (uint8 NCHW tensors) or a list of image
files; data.py turns both into batches. No network access ever: every dataset is local. The
split types and subsets are rsearch.train.splits', CIFAR's batch format rsearch.train.cifar's,
the class folders' listing rsearch.train.folders', and image counts without reading images
rsearch.train.image_counts'.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rsearch.spec.data_section import DataConfig
from rsearch.train.carve import folder_source
from rsearch.train.cifar import CIFAR, read_cifar
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import folder_classes, open_rgb
from rsearch.train.runtime import cpu_threads
from rsearch.train.splits import (
    SPLIT_SEED,
    ImageArray,
    Source,
    Split,
    stratified_subset,
    take,
)

DIGITS_VAL_SIZE = 360
"""Validation images of the digits split (the other 1437 train)."""


def count_classes(cfg: DataConfig) -> int:
    """Classes of a dataset, without reading its images (for model_cost)."""
    if cfg.one_vs_rest is not None:
        return 2
    if cfg.dataset == "digits":
        return 10
    if cfg.dataset == "synthetic":
        return cfg.num_classes
    if cfg.dataset in CIFAR:
        return CIFAR[cfg.dataset][4]
    if cfg.dataset == "shards":
        from rsearch.train.shards import read_index  # deferred: pyarrow is slow to import

        return len(read_index(str(cfg.path)).classes)
    return len(folder_classes(require_dir(cfg.path), "train"))


def load_source(cfg: DataConfig, store_size: int, seed: int) -> Source:
    """Read a dataset and apply data.fraction to its training split.

    Image folders come back as file lists (data.py decides whether to decode them into memory
    or stream them); every other dataset comes back in memory.

    Args:
        cfg: the recipe's data section.
        store_size: side in pixels of the digits (upscaled) and synthetic images.
        seed: the recipe seed (only the synthetic images depend on it).
    """
    from rsearch.train.one_vs_rest import one_vs_rest  # it imports this module

    source = one_vs_rest(_read(cfg, store_size, seed), cfg)
    labels = source.train.labels
    subset = stratified_subset(labels.numpy() if torch.is_tensor(labels) else labels, cfg.fraction)
    source.train = take(source.train, subset)
    return source


_IN_MEMORY: dict[tuple[object, ...], Source] = {}
"""Datasets this process read into memory, by what they were read with: a resident Train
worker trains trial after trial on the same data, and decoding (digits: reading and upscaling;
CIFAR: unpickling) would otherwise be paid by each. Splits are shared, never written to."""

MEMORY_SOURCES_KEPT = 2
"""In-memory datasets kept per process (a search trains on one, at one or two sizes)."""


def _read(cfg: DataConfig, store_size: int, seed: int) -> Source:
    if cfg.dataset not in ("digits", "synthetic", *CIFAR):
        return _read_uncached(cfg, store_size, seed)  # file lists: nothing costly to keep
    key: tuple[object, ...] = (cfg.dataset, cfg.path, store_size)
    if cfg.dataset == "synthetic":
        key += (seed, cfg.synthetic_size, cfg.num_classes)
    if key not in _IN_MEMORY:
        while len(_IN_MEMORY) >= MEMORY_SOURCES_KEPT:
            del _IN_MEMORY[next(iter(_IN_MEMORY))]  # the oldest
        _IN_MEMORY[key] = _read_uncached(cfg, store_size, seed)
    kept = _IN_MEMORY[key]
    return Source(kept.train, kept.val, kept.num_classes)  # callers replace splits, not edit


def _read_uncached(cfg: DataConfig, store_size: int, seed: int) -> Source:
    if cfg.dataset == "digits":
        return _digits(store_size)
    if cfg.dataset == "synthetic":
        return _synthetic(cfg, store_size, seed)
    if cfg.dataset in CIFAR:
        return read_cifar(require_dir(cfg.path), cfg.dataset)

    return folder_source(cfg, require_dir(cfg.path))


def require_dir(path: str | None) -> Path:
    """data.path as an existing local directory.

    Raises:
        TrainInputError: it is unset, missing or not a directory.
    """
    if not path:
        raise TrainInputError("this dataset needs data.path (a local directory)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise TrainInputError(f"data.path {str(root)!r} does not exist or is not a directory")
    return root


# --- digits and synthetic ---------------------------------------------------------------------


def _digits(size: int) -> Source:
    from sklearn.datasets import load_digits  # deferred: sklearn import is slow
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    # 8x8 images of 0..16 -> 0..255, upscaled once to the training resolution, grey -> RGB.
    pixels = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    images = pixels.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target).long()
    train_idx, val_idx = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_VAL_SIZE,
        stratify=bunch.target,
        random_state=SPLIT_SEED,
    )
    train = ImageArray(images[np.sort(train_idx)], labels[np.sort(train_idx)])
    val = ImageArray(images[np.sort(val_idx)], labels[np.sort(val_idx)])
    return Source(train, val, 10)


def _synthetic(cfg: DataConfig, size: int, seed: int) -> Source:
    gen = torch.Generator().manual_seed(seed)

    def split(count: int) -> ImageArray:
        images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=gen)
        labels = torch.randint(0, cfg.num_classes, (count,), generator=gen)
        return ImageArray(images, labels)

    # A fifth as many validation images: enough to exercise evaluation, cheap to run.
    return Source(
        split(cfg.synthetic_size), split(max(1, cfg.synthetic_size // 5)), cfg.num_classes
    )


def decode_file(path: Path, size: int) -> torch.Tensor:
    """An image file as a uint8 3 x size x size tensor: shorter side to size, centre crop."""
    img = open_rgb(path)
    scale = size / min(img.size)
    width, height = (max(size, math.ceil(s * scale - 1e-6)) for s in img.size)
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def decode_all(split: Split, size: int, threads: int | None = None) -> ImageArray:
    """Decode a file split into memory, on cpu_threads(threads) threads (PIL releases the GIL)."""
    if isinstance(split, ImageArray):
        return split
    if not split.files:
        raise TrainInputError("an image folder split holds no images")
    with ThreadPoolExecutor(max_workers=cpu_threads(threads)) as pool:
        images = list(pool.map(lambda p: decode_file(p, size), split.files))
    return ImageArray(torch.stack(images), torch.tensor(split.labels, dtype=torch.long))
