"""data.one_vs_rest: one class of a dataset against all the others, as a two-class task.

The chosen class becomes class 1 and every other class 0 (digits with one_vs_rest 3: about
10% positives), an imbalanced binary task built from any labelled dataset.
"""

from __future__ import annotations

from rsearch.spec.data_section import DataConfig
from rsearch.train.errors import TrainInputError
from rsearch.train.splits import ImageArray, ImageFiles, Source, Split


def binary_labels(split: Split, positive: int) -> Split:
    """The split with `positive` relabelled 1 and every other class 0 (images shared)."""
    if isinstance(split, ImageArray):
        return ImageArray(split.images, (split.labels == positive).long())
    return ImageFiles(split.files, [int(label == positive) for label in split.labels])


def one_vs_rest(source: Source, cfg: DataConfig) -> Source:
    """The source as data.one_vs_rest's two-class task (unchanged when it is unset).

    Raises:
        TrainInputError: the class index is not one of the dataset's.
    """
    positive = cfg.one_vs_rest
    if positive is None:
        return source
    if positive >= source.num_classes:
        raise TrainInputError(
            f"data.one_vs_rest {positive} is not a class index of this dataset "
            f"(it has {source.num_classes} classes: 0-{source.num_classes - 1})"
        )
    return Source(binary_labels(source.train, positive), binary_labels(source.val, positive), 2)
