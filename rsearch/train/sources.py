"""Reading datasets from where they live: the bundled digits, random images, CIFAR batches on
disk, and train/ + val/ class folders.

Everything here returns either images held in memory (uint8 NCHW tensors) or a list of image
files; data.py turns both into batches. No network access ever: every dataset is local.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from rsearch.spec.data_section import DataConfig
from rsearch.train.errors import TrainInputError
from rsearch.train.runtime import cpu_threads

SPLIT_SEED = 0
"""Seed of the fixed digits split and of data.fraction subsets, independent of recipe.seed so
that every trial of a search sees the same images."""

DIGITS_VAL_SIZE = 360
"""Validation images of the digits split (the other 1437 train)."""

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

_CIFAR: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str, int]] = {
    # kind: (train files, test files, label key, folder inside the download, classes)
    "cifar10": (
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        "cifar-10-batches-py",
        10,
    ),
    "cifar100": (("train",), ("test",), "fine_labels", "cifar-100-python", 100),
}


@dataclass
class ImageArray:
    """A split held in memory."""

    images: torch.Tensor
    """uint8 images, N x 3 x H x W."""
    labels: torch.Tensor
    """int64 class indices, N."""

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageFiles:
    """A split read from image files."""

    files: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


Split = ImageArray | ImageFiles


@dataclass
class Source:
    """The train and validation splits of one dataset."""

    train: Split
    val: Split
    num_classes: int


def stratified_subset(labels: Sequence[int] | np.ndarray, fraction: float) -> np.ndarray:
    """Indices of a class-balanced fraction of a split (at least one image of every class).

    The choice is seeded with SPLIT_SEED, so every run with the same fraction sees the same
    images.
    """
    labels = np.asarray(labels)
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(SPLIT_SEED)
    keep = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, round(len(members) * fraction))
        keep.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(keep))


def nested_subset(labels: Sequence[int] | np.ndarray, share: float) -> np.ndarray:
    """Indices of a class-balanced share of a split, nested across shares.

    Each class's images are put in one fixed random order (seeded with SPLIT_SEED, never the
    recipe seed, so every trial of a search sees the same images) and a share keeps the first
    round(share x class size) of them, at least one: a smaller share's images are always
    among a larger share's (the images of a 25% data.progressive stage are in its 50% stage).
    """
    labels = np.asarray(labels)
    if share >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(SPLIT_SEED)
    by_class = np.argsort(labels, kind="stable")  # each class's indices, ascending, in a run
    _, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    keep = []
    for start, count in zip(starts, counts, strict=True):
        # Every class draws its order whatever the share, so all shares share the draws.
        members = rng.permutation(by_class[start : start + count])
        keep.append(members[: max(1, round(count * share))])
    return np.sort(np.concatenate(keep))


def take(split: Split, indices: np.ndarray) -> Split:
    """The images of split at indices."""
    if isinstance(split, ImageArray):
        index = torch.from_numpy(indices).long()
        return ImageArray(split.images[index], split.labels[index])
    return ImageFiles([split.files[i] for i in indices], [split.labels[i] for i in indices])


def count_classes(cfg: DataConfig) -> int:
    """Classes of a dataset, without reading its images (for model_cost)."""
    if cfg.one_vs_rest is not None:
        return 2
    if cfg.dataset == "digits":
        return 10
    if cfg.dataset == "synthetic":
        return cfg.num_classes
    if cfg.dataset in _CIFAR:
        return _CIFAR[cfg.dataset][4]
    if cfg.dataset == "shards":
        from rsearch.train.shard_data import shard_classes  # imports this module

        return shard_classes(cfg)
    return len(_folder_classes(_require_dir(cfg.path), "train"))


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
    if cfg.dataset not in ("digits", "synthetic", *_CIFAR):
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
    if cfg.dataset in _CIFAR:
        return _cifar(_require_dir(cfg.path), cfg.dataset)
    from rsearch.train.carve import folder_source  # carve.py (val_fraction) builds on this

    return folder_source(cfg, _require_dir(cfg.path))


def _require_dir(path: str | None) -> Path:
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


# --- CIFAR --------------------------------------------------------------------------------------


def _cifar(root: Path, kind: str) -> Source:
    train_files, test_files, label_key, folder, classes = _CIFAR[kind]
    if (root / folder).is_dir():  # the directory the official archive unpacks to
        root = root / folder
    train = _cifar_split(root, train_files, label_key)
    val = _cifar_split(root, test_files, label_key)
    return Source(train, val, classes)


def _cifar_split(root: Path, names: tuple[str, ...], label_key: str) -> ImageArray:
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise TrainInputError(
            f"CIFAR batch files {missing} are missing from {str(root)!r}; expected the python "
            f"version ({', '.join(names)})"
        )
    parts = [_cifar_batch(root / name, label_key) for name in names]
    return ImageArray(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


_CIFAR_GLOBALS = frozenset(
    {
        # numpy arrays, dtypes and scalars, under numpy 1's module names (the official files,
        # pickled by Python 2) and numpy 2's
        *((m, "_reconstruct") for m in ("numpy.core.multiarray", "numpy._core.multiarray")),
        *((m, "scalar") for m in ("numpy.core.multiarray", "numpy._core.multiarray")),
        *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
    }
)
"""The only callables a CIFAR batch may name: unpickling anything else could run code."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, lists, dicts and numbers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR batch never holds (refused unread: "
                "unpickling it could run code)"
            )
        return super().find_class(module, name)


_UNREADABLE = (
    OSError,
    pickle.UnpicklingError,
    EOFError,
    AttributeError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    ImportError,
)
"""What a damaged or foreign file raises while unpickled and read as a batch."""


def _cifar_batch(path: Path, label_key: str) -> ImageArray:
    try:
        with path.open("rb") as f:
            batch: dict[Any, Any] = _CifarUnpickler(f, encoding="bytes").load()
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(label_key.encode(), batch.get(label_key))
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        targets = np.asarray(labels, dtype=np.int64)
    except _UNREADABLE as e:
        raise TrainInputError(f"cannot read CIFAR batch {str(path)!r}: {e}") from e
    if len(images) != len(targets):
        raise TrainInputError(
            f"CIFAR batch {str(path)!r}: {len(images)} images, {len(targets)} labels"
        )
    return ImageArray(torch.from_numpy(images.copy()), torch.from_numpy(targets))


# --- image folders --------------------------------------------------------------------------------


def _folder_classes(root: Path, split: str) -> list[str]:
    folder = root / split
    if not folder.is_dir():
        raise TrainInputError(f"{str(root)!r} has no {split}/ folder (expected train/ and val/)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TrainInputError(f"{str(folder)!r} holds no class folders")
    return classes


def folder_files(root: Path) -> Source:
    """List root/train and root/val class folders, checking that both name the same classes."""
    classes = _folder_classes(root, "train")
    val_classes = _folder_classes(root, "val")
    if classes != val_classes:
        only_train = sorted(set(classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(classes))
        raise TrainInputError(
            f"class folders differ between {root}/train and {root}/val: "
            f"only in train {only_train}, only in val {only_val}"
        )
    train = _list_images(root / "train", classes)
    empty = sorted(set(classes) - {classes[i] for i in train.labels})
    if empty:
        raise TrainInputError(f"class folders without images in {root}/train: {empty}")
    val = _list_images(root / "val", classes)
    if not val.files:
        raise TrainInputError(f"{root}/val holds no images")
    return Source(train, val, len(classes))


def _list_images(folder: Path, classes: list[str]) -> ImageFiles:
    files, labels = [], []
    for index, name in enumerate(classes):
        found = sorted(
            p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
        )
        files += found
        labels += [index] * len(found)
    return ImageFiles(files, labels)


def open_rgb(path: Path) -> Image.Image:
    """An image file as a decoded RGB PIL image.

    Raises:
        TrainInputError: the file cannot be read or decoded, naming it.
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise TrainInputError(f"cannot read image {str(path)!r}: {e}") from e


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


# --- image counts (the planner reads no images) -------------------------------------------------


@dataclass(frozen=True)
class ImageCounts:
    """How many images a recipe's data section trains and evaluates on, no image decoded."""

    train: int
    """Training images after data.fraction (the subset every full-data epoch sees)."""
    val: int
    """Validation images (every one is evaluated each epoch)."""
    stages: tuple[int, ...]
    """Training images of each data.progressive stage (its share of the `train` subset)."""


def count_images(cfg: DataConfig, seed: int = 0) -> ImageCounts:
    """Count a dataset's training and validation images as load_source would split them.

    The training subsets follow stratified_subset's rule (every class keeps
    max(1, round(count * fraction)) images), so class sizes are needed only when a fraction
    is below 1; then the digits split is redone on its labels, the synthetic labels are drawn
    again from the seeded generator, and image folders are listed (never decoded).

    Args:
        cfg: the recipe's data section.
        seed: the recipe seed (only the synthetic labels depend on it).
    """
    shares = [stage.fraction or 1.0 for stage in cfg.progressive]
    if cfg.dataset == "shards":  # every image is used (shard_data refuses subsets)
        from rsearch.train.shard_data import shard_counts  # imports this module

        train, val = shard_counts(cfg)
        return ImageCounts(train, val, (train,) * len(shares))
    if cfg.dataset == "synthetic" and cfg.fraction >= 1.0 and all(s >= 1.0 for s in shares):
        # Every image is used: the (random) class sizes do not matter.
        return ImageCounts(
            cfg.synthetic_size, _synthetic_val(cfg), (cfg.synthetic_size,) * len(shares)
        )
    per_class, val = _class_sizes(cfg, seed)
    subset = _stratified_sizes(per_class, cfg.fraction)
    stages = tuple(sum(_stratified_sizes(subset, share)) for share in shares)
    return ImageCounts(sum(subset), val, stages)


def _stratified_sizes(per_class: Sequence[int], fraction: float) -> list[int]:
    # stratified_subset's count per class, without the labels themselves.
    if fraction >= 1.0:
        return list(per_class)
    return [max(1, round(n * fraction)) for n in per_class if n > 0]


def _synthetic_val(cfg: DataConfig) -> int:
    return max(1, cfg.synthetic_size // 5)


def _class_sizes(cfg: DataConfig, seed: int) -> tuple[list[int], int]:
    """Training images per class (before data.fraction) and validation images."""
    if cfg.dataset == "digits":
        return list(_digits_train_sizes()), DIGITS_VAL_SIZE
    if cfg.dataset == "synthetic":
        labels = _synthetic_train_labels(cfg, cfg.image_size, seed)
        return np.bincount(labels, minlength=cfg.num_classes).tolist(), _synthetic_val(cfg)
    if cfg.dataset in _CIFAR:
        # The python batches hold 5000 (CIFAR-10) or 500 (CIFAR-100) images of each class.
        classes = _CIFAR[cfg.dataset][4]
        return [50_000 // classes] * classes, 10_000
    from rsearch.train.carve import folder_source

    source = folder_source(cfg, _require_dir(cfg.path))
    train_labels = source.train.labels
    assert isinstance(train_labels, list)
    return np.bincount(train_labels).tolist(), len(source.val)


@functools.cache
def _digits_train_sizes() -> tuple[int, ...]:
    from sklearn.datasets import load_digits  # deferred: sklearn import is slow
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train_idx, _ = train_test_split(
        np.arange(len(target)),
        test_size=DIGITS_VAL_SIZE,
        stratify=target,
        random_state=SPLIT_SEED,
    )
    return tuple(np.bincount(target[train_idx], minlength=10).tolist())


SYNTHETIC_CHUNK = 2**24
"""Random bytes drawn at a time when replaying the synthetic images (bounded memory)."""


def _synthetic_train_labels(cfg: DataConfig, size: int, seed: int) -> np.ndarray:
    # _synthetic draws the training images, then their labels, from one generator; the CPU
    # generator draws one value per element in order, so the images can be skipped in chunks.
    gen = torch.Generator().manual_seed(seed)
    remaining = cfg.synthetic_size * 3 * size * size
    while remaining:
        chunk = min(remaining, SYNTHETIC_CHUNK)
        torch.randint(0, 256, (chunk,), dtype=torch.uint8, generator=gen)
        remaining -= chunk
    labels = torch.randint(0, cfg.num_classes, (cfg.synthetic_size,), generator=gen)
    return labels.numpy()
