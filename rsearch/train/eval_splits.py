"""Extra evaluation splits (data.eval_splits): out-of-distribution sets evaluated every epoch.

Each split is an image folder of class subfolders named as the training classes (refused
otherwise, naming the missing and extra ones). It is batched like the validation set: decoded
into memory when the training data is in memory (resized on the device by the eval
transform), streamed through loader workers otherwise, every image once over all ranks.
Its metrics are the validation metrics' family under the split's name (rotated_top1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader

from rsearch.spec.data_section import DataConfig
from rsearch.spec.metric_names import at_split
from rsearch.spec.recipe import Recipe
from rsearch.train.augment import pil_eval_transform
from rsearch.train.classify_metrics import Scores, class_metrics, class_metrics_on
from rsearch.train.data import (
    Batches,
    DataBundle,
    FileDataset,
    MemoryBatches,
    StreamBatches,
    store_size,
)
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import IMAGE_EXTENSIONS, folder_classes
from rsearch.train.one_vs_rest import binary_labels
from rsearch.train.sources import decode_all
from rsearch.train.splits import ImageFiles
from rsearch.train.sums import EvalSums


def training_classes(cfg: DataConfig) -> list[str]:
    """The training set's class names, which every evaluation split's folders must match.

    Raises:
        TrainInputError: a dataset whose class names rsearch does not know (CIFAR).
    """
    if cfg.dataset == "image_folder":
        assert cfg.path is not None  # DataConfig requires it
        return folder_classes(Path(cfg.path).expanduser(), "train")
    if cfg.dataset == "digits":
        return [str(i) for i in range(10)]
    if cfg.dataset == "synthetic":
        return [str(i) for i in range(cfg.num_classes)]
    raise TrainInputError(
        f"data.eval_splits needs the training classes' names: train on an image_folder, digits "
        f"or synthetic data ({cfg.dataset} gives none)"
    )


def list_split(name: str, folder: str, classes: list[str]) -> ImageFiles:
    """The images of an evaluation split, labelled by the training classes' order.

    Raises:
        TrainInputError: a missing folder, class folders other than the training classes
            (naming the missing and the extra ones), or no images.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise TrainInputError(f"data.eval_splits.{name}: {str(root)!r} is not a directory")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
    if missing or extra:
        raise TrainInputError(
            f"data.eval_splits.{name}: the class folders of {str(root)!r} differ from the "
            f"training classes: missing {missing}, extra {extra}"
        )
    files, labels = [], []
    for index, cls in enumerate(classes):
        images = sorted(p for p in (root / cls).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        files += images
        labels += [index] * len(images)
    if not files:
        raise TrainInputError(f"data.eval_splits.{name}: {str(root)!r} holds no images")
    return ImageFiles(files, labels)


@dataclass
class EvalSplit:
    """One extra evaluation split, batched for this rank."""

    name: str
    files: ImageFiles
    memory: MemoryBatches | None
    """The split in memory (in-memory training data), else None: streamed at each size."""
    streamed: dict[int, Batches] = field(default_factory=dict)

    def batches(self, data: DataBundle, recipe: Recipe, size: int) -> Batches:
        """This rank's batches of the split at the epoch's evaluation size."""
        if self.memory is not None:
            return self.memory
        if size not in self.streamed:
            maker = data.maker
            transform = pil_eval_transform(size, recipe.data.crop_pct, maker.interpolation)
            loader = DataLoader(
                FileDataset(self.files, transform),
                batch_size=maker.batch,
                sampler=_shard(len(self.files), maker.ctx),
                num_workers=recipe.data.num_workers,
                pin_memory=maker.device.type == "cuda",
            )
            self.streamed = {size: StreamBatches(loader, maker.device)}
        return self.streamed[size]


def _shard(size: int, ctx: DistContext) -> list[int]:
    # Every image once over all ranks (as the validation set), so reduced counts are exact.
    return list(range(ctx.rank, size, ctx.world_size))


def build_eval_splits(
    recipe: Recipe, data: DataBundle, threads: int | None = None
) -> list[EvalSplit]:
    """Every split of data.eval_splits, listed, checked and batched for this rank."""
    cfg = recipe.data
    if not cfg.eval_splits:
        return []
    classes = training_classes(cfg)
    out = []
    for name, folder in cfg.eval_splits.items():
        files = list_split(name, folder, classes)
        if cfg.one_vs_rest is not None:
            files = binary_labels(files, cfg.one_vs_rest)  # type: ignore[assignment]
        memory = None
        if data.in_memory:
            decoded = decode_all(files, store_size(cfg), threads)
            shard = _shard(len(files), data.maker.ctx)
            memory = MemoryBatches(decoded, data.maker.batch, shard, data.maker.device, False)
        out.append(EvalSplit(name, files, memory))
    return out


def split_metrics(
    name: str, sums: EvalSums, scores: Scores | None, cfg: DataConfig, ctx: DistContext
) -> dict[str, float]:
    """A split's metrics, named `<name>_top1` ...: sums reduced, scores gathered (all ranks)."""
    total = sums.all_reduce(ctx)
    out = {
        at_split(name, "val_top1"): total.top1_pct,
        at_split(name, "val_top5"): total.top5_pct,
        at_split(name, "val_loss"): total.mean_loss,
    }
    if scores is not None:
        out.update(class_metrics(*scores.gathered(ctx), cfg, prefix=name))
    return out


def new_scores(cfg: DataConfig, num_classes: int) -> Scores | None:
    """A buffer of per-image scores when data.class_metrics asks for them, else None."""
    return Scores() if class_metrics_on(cfg, num_classes) else None
