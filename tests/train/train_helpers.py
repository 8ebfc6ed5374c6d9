"""Helpers of the training-core tests: tiny recipes and tiny datasets written to tmp dirs."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsearch.spec import Recipe
from rsearch.spec.source import deep_merge
from rsearch.train import Metrics

RecipeFactory = Callable[..., Recipe]

TINY: dict[str, Any] = {
    "model": {"name": "test_resnet"},
    "data": {
        "dataset": "synthetic",
        "image_size": 16,
        "synthetic_size": 64,
        "num_classes": 4,
        "batch_size": 16,
    },
    "epochs": 1,
}
"""timm's 0.4M-parameter test ResNet on 64 random 16 px images: a step takes milliseconds."""


merge = deep_merge
"""Recipe overrides merge like `extends`: the spec loader's deep merge."""


def write_image_folder(
    root: Path, classes: dict[str, list[str]] | None = None, per_class: int = 4
) -> Path:
    """Write root/train/<class>/*.png and root/val/<class>/*.png of assorted sizes.

    Each class has its own colour, so a model could tell them apart.
    """
    classes = classes or {"train": ["cat", "dog", "fox"], "val": ["cat", "dog", "fox"]}
    rng = np.random.default_rng(0)
    sizes = [(20, 20), (31, 17), (12, 40), (64, 48)]
    for split, names in classes.items():
        for index, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                w, h = sizes[i % len(sizes)]
                pixels = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
                pixels[..., index % 3] += 150
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def write_cifar(root: Path, kind: str, per_batch: int = 10) -> Path:
    """Write CIFAR python batches (the official pickle format) with random images."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if kind == "cifar10":
        names, key, classes = (
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
            b"labels",
            10,
        )
    else:
        names, key, classes = ["train", "test"], b"fine_labels", 100
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            key: [int(v) for v in rng.integers(0, classes, per_batch)],
            b"batch_label": name.encode(),
        }
        with (root / name).open("wb") as f:
            pickle.dump(batch, f)
    return root


class Reports:
    """A report callable keeping every epoch's metrics; raises after `stop_after` epochs."""

    def __init__(self, stop_after: int | None = None):
        self.metrics: list[Metrics] = []
        self.stop_after = stop_after

    def __call__(self, metrics: Metrics, _checkpoint: str | None) -> None:
        self.metrics.append(metrics)
        if len(self.metrics) == self.stop_after:
            raise KeyboardInterrupt("simulated crash after a checkpoint")

    def values(self, key: str) -> list[Any]:
        """Every reported epoch's value of one metric."""
        return [m[key] for m in self.metrics]
