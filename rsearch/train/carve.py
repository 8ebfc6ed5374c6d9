"""A stratified validation split carved from an image folder's train/ (data.val_fraction).

Many datasets arrive as one folder of class folders. With no val/ folder and
`data.val_fraction: f`, a share f of train/ is held out for validation with every class kept
in proportion (scikit-learn's train_test_split with stratify=labels). The carve is seeded by
`data.split_seed`, never by the recipe seed, so all trials of a search (whatever seeds they
train with) validate on the same images and their scores compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from rsearch.spec.data_section import DataConfig
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import folder_classes, folder_files, list_images
from rsearch.train.splits import Source, take


def folder_source(cfg: DataConfig, root: Path) -> Source:
    """An image folder's splits: train/ and val/, or train/ and a val split carved from it.

    Raises:
        TrainInputError: a val/ folder together with data.val_fraction, no val/ folder without
            it, or a class too small to be split.
    """
    has_val = (root / "val").is_dir()
    if has_val and cfg.val_fraction is not None:
        raise TrainInputError(
            f"{str(root)!r} has a val/ folder; data.val_fraction carves a validation split "
            "only from a folder without one (drop val_fraction to use val/)"
        )
    if not has_val and cfg.val_fraction is None:
        raise TrainInputError(
            f"{str(root)!r} has no val/ folder; add one, or set data.val_fraction (e.g. 0.2) "
            "to carve a stratified validation split from train/"
        )
    if has_val:
        return folder_files(root)
    assert cfg.val_fraction is not None
    classes = folder_classes(root, "train")
    images = list_images(root / "train", classes)
    train, val = stratified_carve(np.asarray(images.labels), cfg.val_fraction, cfg.split_seed)
    return Source(take(images, train), take(images, val), len(classes))


def stratified_carve(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices, the validation share keeping class proportions.

    Raises:
        TrainInputError: a class with fewer than two images, or a fraction that leaves fewer
            validation (or training) images than classes.
    """
    counts = np.bincount(labels)
    if counts.min(initial=2) < 2:
        small = np.flatnonzero((counts > 0) & (counts < 2)).tolist()
        raise TrainInputError(
            f"data.val_fraction needs at least 2 images of every class to carve a validation "
            f"split; classes {small} of train/ have one (class-folder order)"
        )
    index = np.arange(len(labels))
    try:
        train, val = train_test_split(
            index, test_size=fraction, stratify=labels, random_state=seed, shuffle=True
        )
    except ValueError as err:  # scikit-learn's wording names test_size and the class count
        raise TrainInputError(
            f"data.val_fraction {fraction:g} cannot split {len(labels)} images of "
            f"{np.count_nonzero(counts)} classes with every class on both sides ({err})"
        ) from None
    return np.sort(train), np.sort(val)
