"""The metrics the training core reports: one table of names, units and directions.

Everything that names a metric asks this table: spec validation (which metrics an objective
may use, and their natural direction), report labels, the summary kept on each Optuna trial.
A test trains a real epoch and checks that `rsearch.train.fit` reports exactly these names.
Pure data: the spec layer imports no torch, ray or mlflow. The names the table's pattern rules
add (`name@N`, `name@mean`, `<split>_<rest>`) are read in rsearch.spec.metric_names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["max", "min"]
When = Literal["epoch", "ema", "last", "start"]


@dataclass(frozen=True)
class MetricInfo:
    """One metric the training core reports."""

    name: str
    """The key in the reported metrics."""
    title: str
    """What it measures, in words (a report's axis label without the unit)."""
    unit: str
    """Its unit ('' for counts and losses)."""
    direction: Direction | None
    """Which way is better; None for bookkeeping values no search optimises."""
    description: str
    """One sentence on how it is measured."""
    when: When = "epoch"
    """Reported every epoch, every epoch when EMA is on ('ema'), after the last one, or with a
    trial's first result by the trial driver, not by fit ('start')."""
    summary: bool = False
    """Kept with each trial's final result in the Optuna study (reports read it there)."""
    text: bool = False
    """A text value (a name), not a number: consumers that plot or log numbers skip it."""
    per_resolution: bool = False
    """Also reported as `name@N` at each test resolution N of data.eval_resolutions."""
    mean_resolution: bool = False
    """Also reported as `name@mean`, the average over data.eval_resolutions."""
    per_split: bool = False
    """A `val_` metric also reported as `<split>_<rest>` for each split of data.eval_splits."""
    binary: bool = False
    """Reported for two-class tasks only (sensitivity, specificity)."""
    class_metric: bool = False
    """Computed from the gathered per-image scores, only while data.class_metrics is on."""

    def __post_init__(self) -> None:
        if self.text and (self.direction is not None or self.summary):
            raise ValueError(f"text metric {self.name!r} can be neither an objective nor summary")

    @property
    def label(self) -> str:
        """The title with its unit, as an axis shows it."""
        return f"{self.title} ({self.unit})" if self.unit else self.title


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("epoch", "epoch", "", None, "Epochs trained so far (1-based).", summary=True),
    MetricInfo(
        "val_top1",
        "validation top-1",
        "%",
        "max",
        "Share of validation images whose top class is right, counted over all workers.",
        summary=True,
        per_resolution=True,
        mean_resolution=True,
        per_split=True,
    ),
    MetricInfo(
        "val_top5",
        "validation top-5",
        "%",
        "max",
        "Share of validation images whose class is among the top five (all, under 5 classes).",
        per_split=True,
    ),
    MetricInfo(
        "val_loss",
        "validation loss",
        "",
        "min",
        "Cross-entropy per validation image.",
        summary=True,
        per_resolution=True,
        per_split=True,
    ),
    MetricInfo(
        "val_auc",
        "validation ROC AUC",
        "",
        "max",
        "Area under the ROC curve of the positive class's probability (two classes), else the "
        "macro one-vs-rest AUC, over every worker's validation images (scikit-learn).",
        summary=True,
        per_split=True,
        class_metric=True,
    ),
    MetricInfo(
        "val_balanced_acc",
        "validation balanced accuracy",
        "%",
        "max",
        "Mean over classes of the share of each class's validation images predicted right (two "
        "classes: positive when its probability >= data.threshold; else the top class).",
        per_split=True,
        class_metric=True,
    ),
    MetricInfo(
        "val_f1",
        "validation F1",
        "%",
        "max",
        "F1 score of the positive class (two classes, at data.threshold), else macro F1 over "
        "the classes.",
        per_split=True,
        class_metric=True,
    ),
    MetricInfo(
        "val_sensitivity",
        "validation sensitivity",
        "%",
        "max",
        "Share of positive validation images (data.positive_class) whose positive-class "
        "probability is >= data.threshold: recall of the positive class. Two classes only.",
        per_split=True,
        binary=True,
        class_metric=True,
    ),
    MetricInfo(
        "val_specificity",
        "validation specificity",
        "%",
        "max",
        "Share of negative validation images whose positive-class probability is below "
        "data.threshold: recall of the negative class. Two classes only.",
        per_split=True,
        binary=True,
        class_metric=True,
    ),
    MetricInfo(
        "ema_val_top1",
        "EMA validation top-1",
        "%",
        "max",
        "val_top1 of the exponential moving average of the weights.",
        when="ema",
        summary=True,
    ),
    MetricInfo(
        "ema_val_loss",
        "EMA validation loss",
        "",
        "min",
        "val_loss of the exponential moving average of the weights.",
        when="ema",
    ),
    MetricInfo(
        "train_loss",
        "training loss",
        "",
        "min",
        "The training loss (mixup, label smoothing, BCE included) per image of the epoch.",
    ),
    MetricInfo(
        "params_m",
        "parameters",
        "M",
        "min",
        "Parameters of the model, in millions.",
        summary=True,
    ),
    MetricInfo(
        "gflops",
        "compute",
        "GFLOPs/image",
        "min",
        "Multiply-adds of one image's forward pass at the final evaluation resolution, in "
        "billions.",
        summary=True,
    ),
    MetricInfo(
        "model_mbit",
        "model size",
        "Mbit",
        "min",
        "Bits of the model's parameters, in millions: the weights of quantised layers at their "
        "bit-width (quant), every other parameter at 32.",
        summary=True,
    ),
    MetricInfo(
        "gbops",
        "bit-operations",
        "GBOPs/image",
        "min",
        "Each conv/linear layer's multiply-adds times its weight bits times its input bits "
        "(32 each at full precision), other multiply-adds at 32 x 32, for one image at the "
        "final evaluation resolution, in billions.",
        summary=True,
    ),
    MetricInfo(
        "train_images_per_s",
        "training throughput",
        "images/s",
        "max",
        "Training images of the epoch over the seconds its slowest worker's loop took.",
        summary=True,
    ),
    MetricInfo(
        "infer_images_per_s",
        "inference throughput, batched",
        "images/s",
        "max",
        "Images per second of one batched forward pass in eval mode (median), on rank 0.",
        when="last",
        summary=True,
    ),
    MetricInfo(
        "infer_latency_ms",
        "inference latency, batch of 1",
        "ms",
        "min",
        "Median time of a forward pass over one image in eval mode, on rank 0.",
        when="last",
        summary=True,
    ),
    MetricInfo(
        "infer_latency_ms_batch",
        "inference latency, whole batch",
        "ms",
        "min",
        "Median time of a forward pass over one inference batch in eval mode, on rank 0.",
        when="last",
    ),
    MetricInfo(
        "infer_spread_pct",
        "inference throughput spread",
        "%",
        None,
        "Coefficient of variation of the batched pass time over the measurement's timed "
        "windows (rsearch.train.measure's protocol).",
        when="last",
        summary=True,
    ),
    MetricInfo(
        "infer_latency_spread_pct",
        "inference latency spread",
        "%",
        None,
        "Coefficient of variation of the batch-of-1 pass time over the measurement's timed "
        "windows.",
        when="last",
        summary=True,
    ),
    MetricInfo(
        "epoch_s",
        "epoch time",
        "s",
        "min",
        "Wall time of the epoch (training and evaluation) on its slowest worker.",
    ),
    MetricInfo(
        "startup_s",
        "trial start-up",
        "s",
        None,
        "Seconds from the trial driver's start to the start of the first epoch it reports: "
        "Ray Train start-up (or a warm run's next job), model, data and checkpoint restore.",
        when="start",
    ),
    MetricInfo("lr", "learning rate", "", None, "The learning rate the epoch trained with."),
    MetricInfo(
        "epoch_train_flops",
        "training compute of the epoch",
        "FLOPs",
        None,
        "FLOPs (2 per multiply-add) of one image's forward and backward pass at the epoch's "
        "training resolution times the training images all workers saw (repeats included; "
        "twice under SAM, which takes two passes a step).",
    ),
    MetricInfo(
        "epoch_eval_flops",
        "evaluation compute of the epoch",
        "FLOPs",
        None,
        "FLOPs of one image's forward pass at the epoch's evaluation resolution times the "
        "validation images evaluated, twice when the EMA weights are evaluated too.",
    ),
    MetricInfo(
        "total_flops",
        "compute so far",
        "FLOPs",
        None,
        "Training and evaluation FLOPs of every epoch the trial trained so far, epochs "
        "trained before a resume included.",
    ),
    MetricInfo(
        "device_s",
        "device time of the epoch",
        "device-s",
        None,
        "epoch_s times the number of workers (each holds one CPU worker slot or one GPU).",
    ),
    MetricInfo(
        "total_device_s",
        "device time so far",
        "device-s",
        None,
        "device_s summed over every epoch the trial trained so far, before a resume included.",
    ),
    MetricInfo(
        "fidelity",
        "fidelity so far",
        "full-fidelity epochs",
        None,
        "Training compute so far in epochs at data.image_size on the whole training set: a "
        "data.progressive stage's epoch counts its per-image training FLOPs over the final "
        "resolution's, times its share of the data (image counts do not enter).",
    ),
    MetricInfo(
        "train_image_size",
        "training resolution",
        "px",
        None,
        "Side of the images the epoch trained on (its data.progressive stage's, or image_size).",
    ),
    MetricInfo(
        "train_fraction",
        "training-set share",
        "",
        None,
        "Share of the training set (after data.fraction) the epoch trained on: its "
        "data.progressive stage's fraction, 1 outside the stages.",
    ),
    MetricInfo(
        "eval_image_size",
        "evaluation resolution",
        "px",
        None,
        "Side of the images the epoch evaluated on (data.eval_rule decides it).",
    ),
    MetricInfo(
        "device_kind",
        "device",
        "",
        None,
        "What rank 0 trained on: 'cpu' or the CUDA device's name (a text value).",
        text=True,
    ),
)
"""Every metric `rsearch.train.fit` reports."""

BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}
"""The table by metric name."""

OBJECTIVE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.direction is not None)
"""The metrics an objective may name: those with a better direction."""

SUMMARY_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.summary)
"""The final metrics kept on each Optuna trial."""

TEXT_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.text)
"""The metrics whose values are text, not numbers."""


AUTO_MAX_CLASSES = 100
"""data.class_metrics null reports the class_metric rows up to this many classes (their cost
grows with images x classes)."""
