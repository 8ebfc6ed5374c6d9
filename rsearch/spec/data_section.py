"""The data section of a recipe: where the images come from, how they are batched, sized,
evaluated and ordered, with its validators.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rsearch.spec.base import Strict
from rsearch.spec.metric_names import split_name

DatasetKind = Literal["digits", "synthetic", "image_folder", "cifar10", "cifar100", "shards"]


class Stage(Strict):
    """A stretch of training at a lower fidelity: smaller images and/or less data.

    Stages run in order from the first epoch; epochs after the last stage train at
    `data.image_size` on the whole training set. A trial stopped after a stage has spent that
    stage's (smaller) compute, which is what a compute-unit scheduler counts (FFCV's
    progressive resizing, ResNet-RS's low-resolution early epochs).
    """

    epochs: int = Field(ge=1)
    """Epochs trained in this stage."""
    image_size: int | None = Field(None, ge=8, le=1024)
    """Train resolution of the stage; defaults to data.image_size."""
    fraction: float | None = Field(None, gt=0.0, le=1.0)
    """Share of the training set (of data.fraction's subset) seen in the stage; defaults to all
    of it. Subsets are nested: a later, larger stage keeps the earlier stage's images."""


class DataConfig(Strict):
    """Where the images come from and how they are batched."""

    dataset: DatasetKind = "digits"
    """digits (bundled), synthetic, image_folder (train/ and val/ class folders), cifar10/100,
    shards (`rsearch data pack` output, streamed)."""
    path: str | None = None
    """Directory of an image_folder or of CIFAR python batches; of shards, also an s3:// or
    gs:// URI."""
    image_size: int = Field(32, ge=8, le=1024)
    """Train resolution in pixels."""
    eval_image_size: int | None = Field(None, ge=8, le=1024)
    """Test resolution (defaults to image_size); RSB A3 trains at 160 and tests at 224."""
    crop_pct: float = Field(1.0, gt=0.0, le=1.0)
    """Center-crop fraction at evaluation (timm's crop_pct)."""
    batch_size: int = Field(64, ge=1)
    """Global batch size across all workers of a trial."""
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    """Use this stratified fraction of the training set (the budget knob of fast searches)."""
    num_classes: int = Field(10, ge=2)
    """Classes of the synthetic dataset (other datasets know their own)."""
    synthetic_size: int = Field(1024, ge=1)
    """Training images of the synthetic dataset."""
    num_workers: int = Field(0, ge=0)
    """Loader processes for streamed datasets (in-memory ones need none)."""
    progressive: list[Stage] = Field(default_factory=list)
    """Low-fidelity stages trained first (progressive resizing / data fraction), in order."""
    eval_rule: Literal["final", "fixres"] = "final"
    """Evaluate at the final resolution (eval_image_size or image_size) every epoch, or, with
    fixres, at the current train resolution times fixres_ratio (FixRes's train/test ratio)."""
    fixres_ratio: float = Field(1.15, ge=1.0, le=2.0)
    """Test-to-train resolution ratio of the fixres eval rule."""
    train_resolutions: list[Annotated[int, Field(ge=8, le=1024)]] = Field(default_factory=list)
    """Multi-resolution training (ResFormer): each step trains at a resolution drawn uniformly
    from this set (seeded by the recipe's seed and the epoch, so a resumed run draws the same
    sequence); empty trains every step at image_size. In-memory data only; not combined with
    progressive (which fixes each epoch's resolution)."""
    multi_resolution: bool = True
    """Use train_resolutions; false trains at image_size only. A search compares single- and
    multi-resolution training by this switch (categorical choices are scalars, not lists)."""
    eval_resolutions: list[Annotated[int, Field(ge=8, le=1024)]] = Field(default_factory=list)
    """Test resolutions evaluated every epoch besides the usual one, each reported as
    val_top1@N and val_loss@N, with val_top1@mean their average; empty evaluates none."""
    one_vs_rest: int | None = Field(None, ge=0)
    """Make the task binary: this class (by index: digit 3 of digits, the n-th class folder
    in sorted order) becomes class 1, every other class 0; unset keeps the dataset's classes."""
    positive_class: Literal[0, 1] = 1
    """The positive class of a two-class task (AUC, F1, sensitivity, specificity)."""
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    """A two-class image is predicted positive when its positive-class probability is at least
    this (balanced accuracy, F1, sensitivity, specificity)."""
    class_metrics: bool | None = None
    """Report AUC, balanced accuracy, F1 (and, for two classes, sensitivity and specificity)
    every epoch; null reports them for tasks of at most 100 classes. They gather every
    evaluated image's class probabilities from all workers and cost tens of milliseconds an
    evaluation on a few classes, but ~36 s on 50,000 images of 1000 classes (one CPU core)."""
    eval_splits: dict[str, str] = Field(default_factory=dict)
    """Extra evaluation sets (out-of-distribution robustness): name -> image folder of class
    subfolders named as the training classes; each evaluated every epoch and reported as
    <name>_top1, <name>_loss, <name>_auc, ... (the val_ metrics' family)."""
    sampler: Literal["uniform", "balanced"] = "uniform"
    """Training order: uniform (each image once an epoch), or balanced (an epoch's worth of
    draws with replacement, each class drawn equally often; for imbalanced data)."""
    val_fraction: float | None = Field(None, gt=0.0, lt=1.0)
    """image_folder without a val/ folder: carve this stratified fraction of train/ as the
    validation split (class proportions kept); null needs a val/ folder."""
    split_seed: int = 0
    """Seed of the val_fraction carve. Not the recipe seed: trials of a search that vary the
    seed still share one split, so their validation scores compare."""

    @model_validator(mode="after")
    def _path_when_needed(self) -> DataConfig:
        if self.dataset in ("image_folder", "cifar10", "cifar100", "shards") and not self.path:
            raise ValueError(f"dataset {self.dataset!r} needs data.path")
        return self

    @field_validator("eval_splits")
    @classmethod
    def _split_names(cls, splits: dict[str, str]) -> dict[str, str]:
        for name, folder in splits.items():
            split_name(name)
            if not folder:
                raise ValueError(f"evaluation split {name!r} needs a folder path")
        return splits

    @model_validator(mode="after")
    def _resolution_sets(self) -> DataConfig:
        for name in ("train_resolutions", "eval_resolutions"):
            sizes = getattr(self, name)
            if len(set(sizes)) != len(sizes):
                raise ValueError(f"data.{name} repeats a resolution: {sizes}")
        if self.train_resolutions and self.progressive:
            raise ValueError(
                "data.train_resolutions cannot be combined with data.progressive: progressive "
                "fixes each epoch's resolution, train_resolutions draws each step's; use one"
            )
        return self

    @model_validator(mode="after")
    def _carve_image_folders_only(self) -> DataConfig:
        if self.val_fraction is not None and self.dataset != "image_folder":
            raise ValueError(
                f"data.val_fraction carves a validation split from an image_folder's train/; "
                f"dataset {self.dataset!r} brings its own validation split"
            )
        return self
