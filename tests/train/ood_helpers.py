"""An out-of-distribution split of the digits task, written as an image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_rotated_digits(root: Path, per_class: int = 4, classes: list[str] | None = None) -> Path:
    """Digits images turned 90 degrees, in class folders named 0-9 (an out-of-distribution
    split of the digits task)."""
    bunch = load_digits()
    for name in classes or [str(c) for c in range(10)]:
        folder = root / name
        folder.mkdir(parents=True)
        members = np.flatnonzero(bunch.target == int(name))[-per_class:]
        for i in members:
            pixels = np.rot90(bunch.images[i] * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).convert("RGB").save(folder / f"{i}.png")
    return root
