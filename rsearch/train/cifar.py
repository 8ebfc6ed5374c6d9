"""CIFAR-10/100 from the python batches on disk, unpickled without running code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsearch.train.errors import TrainInputError
from rsearch.train.splits import ImageArray, Source

CIFAR: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str, int]] = {
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


def read_cifar(root: Path, kind: str) -> Source:
    """CIFAR-10 or -100 (kind) from its python batches in root or in the folder the official
    archive unpacks to inside it: train batches as train, test batch as val."""
    train_files, test_files, label_key, folder, classes = CIFAR[kind]
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


CIFAR_GLOBALS = frozenset(
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
        if (module, name) not in CIFAR_GLOBALS:
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
