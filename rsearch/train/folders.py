"""Image folders: class folders under train/ and val/, listed (never decoded) and checked.

An image folder is ROOT/train/CLASS/*.png (any of IMAGE_EXTENSIONS, in subfolders too) and
ROOT/val/CLASS/...; a class's index is its place in the sorted class folder names. The
readers that build on the listing (sources.py for image_folder, carve.py for a carved
validation split, eval_splits.py, and `rsearch data pack` in shards.py) all take it from here.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from rsearch.train.errors import TrainInputError
from rsearch.train.splits import ImageFiles, Source

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def folder_classes(root: Path, split: str) -> list[str]:
    """The class folder names of root/split, sorted (a class's index is its place here).

    Raises:
        TrainInputError: root has no split/ folder, or it holds no class folders.
    """
    folder = root / split
    if not folder.is_dir():
        raise TrainInputError(f"{str(root)!r} has no {split}/ folder (expected train/ and val/)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TrainInputError(f"{str(folder)!r} holds no class folders")
    return classes


def folder_files(root: Path) -> Source:
    """List root/train and root/val class folders, checking that both name the same classes."""
    classes = folder_classes(root, "train")
    val_classes = folder_classes(root, "val")
    if classes != val_classes:
        only_train = sorted(set(classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(classes))
        raise TrainInputError(
            f"class folders differ between {root}/train and {root}/val: "
            f"only in train {only_train}, only in val {only_val}"
        )
    train = list_images(root / "train", classes)
    empty = sorted(set(classes) - {classes[i] for i in train.labels})
    if empty:
        raise TrainInputError(f"class folders without images in {root}/train: {empty}")
    val = list_images(root / "val", classes)
    if not val.files:
        raise TrainInputError(f"{root}/val holds no images")
    return Source(train, val, len(classes))


def list_images(folder: Path, classes: list[str]) -> ImageFiles:
    """The image files under each class folder of folder, labelled by the class's index."""
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
