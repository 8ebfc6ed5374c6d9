"""The metrics the training core reports: one table of names, units and directions.

Everything that names a metric asks this table: spec validation (which metrics an objective
may use, and their natural direction), report labels, the summary kept on each Optuna trial.
A test trains a real epoch and checks that `rsearch.train.fit` reports exactly these names.
Pure data: the spec layer imports no torch, ray or mlflow.

One explicit pattern rule extends the table: a metric marked `per_resolution` is also reported
at each test resolution N of data.eval_resolutions as `name@N` (val_top1@48), and one marked
`mean_resolution` as `name@mean`, their average. `metric_info` understands both forms.

A second rule: a metric marked `per_split` (val_top1, val_auc, ...) is also reported for each
extra evaluation split of data.eval_splits as `<split>_<rest>` (rotated_top1 for a split named
`rotated`); split names are identifiers that are no prefix of a table metric (`split_name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from rsearch.spec.names import suggest

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


MEAN = "mean"
"""The suffix of a metric averaged over the test resolutions (val_top1@mean)."""


def at_resolution(base: str, resolution: int | str) -> str:
    """The name of a metric at a test resolution (or at MEAN): `base@resolution`."""
    return f"{base}@{resolution}"


def resolution_of(name: str) -> int | str | None:
    """The test resolution a metric name is suffixed with (an int, or MEAN); None without one."""
    _, sep, suffix = name.partition("@")
    if not sep:
        return None
    return int(suffix) if suffix.isdigit() else suffix


AUTO_MAX_CLASSES = 100
"""data.class_metrics null reports the class_metric rows up to this many classes (their cost
grows with images x classes)."""

SPLIT_PREFIX = "val_"
"""The prefix a per_split metric's `<split>_` replaces."""

RESERVED_PREFIXES: frozenset[str] = frozenset(
    name[:i] for name in BY_NAME for i, char in enumerate(name) if char == "_"
)
"""Every `_`-ended head of a table metric's name (val, ema, ema_val, train, infer, ...): no
split may take one, or `<split>_loss` could be a table metric (train_loss)."""


def split_name(name: str) -> str:
    """Return name when it may name an evaluation split; raise ValueError why not otherwise."""
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(
            f"evaluation split name {name!r} must be an identifier (letters, digits, _), as its "
            f"metrics are named <name>_top1"
        )
    if name in RESERVED_PREFIXES:
        taken = next(m for m in BY_NAME if m.startswith(name + "_"))
        raise ValueError(
            f"evaluation split name {name!r} would collide with the table's metrics (it "
            f"begins {taken}); choose another name"
        )
    return name


def split_of(name: str) -> str | None:
    """The evaluation split a metric name belongs to (`rotated` of rotated_top1), or None."""
    found = _split_and_metric(name) if name not in BY_NAME and "@" not in name else None
    return found[0] if found else None


def at_split(split: str, base: str) -> str:
    """The name of a per_split metric (val_top1) on an evaluation split: `<split>_top1`."""
    return f"{split}_{base.removeprefix(SPLIT_PREFIX)}"


def _split_and_metric(name: str) -> tuple[str, MetricInfo] | None:
    """(split, val_ metric) a `<split>_<rest>` name stands for, or None."""
    for metric in METRICS:
        rest = metric.name.removeprefix(SPLIT_PREFIX)
        split = name[: -len(rest) - 1]
        if metric.per_split and name.endswith("_" + rest) and split:
            try:
                return split_name(split), metric
            except ValueError:
                return None
    return None


def _split_metric(name: str) -> MetricInfo | None:
    found = _split_and_metric(name)
    if found is None:
        return None
    split, metric = found
    return replace(
        metric,
        name=name,
        title=metric.title.replace("validation", f"{split} split", 1),
        description=f"{metric.name} on the evaluation split {split} (data.eval_splits).",
        per_resolution=False,
        mean_resolution=False,
        per_split=False,
    )


def metric_info(name: str) -> MetricInfo | None:
    """The table's row for a metric name, `base@N`, `base@mean` and `<split>_<rest>` included;
    None if unknown."""
    if name in BY_NAME:
        return BY_NAME[name]
    if "@" not in name:
        return _split_metric(name)
    base, sep, suffix = name.partition("@")
    info = BY_NAME.get(base)
    if not sep or info is None or not info.per_resolution:
        return None
    if suffix == MEAN and info.mean_resolution:
        title = f"{info.title}, mean over test resolutions"
        description = f"{base} averaged over the test resolutions of data.eval_resolutions."
    elif suffix.isdigit() and not suffix.startswith("0"):
        title = f"{info.title} at {suffix} px"
        description = f"{base} of the images resized to {suffix} px (data.eval_resolutions)."
    else:
        return None
    return replace(
        info,
        name=name,
        title=title,
        description=description,
        per_resolution=False,
        mean_resolution=False,
    )


def is_summary(name: str) -> bool:
    """Whether a reported metric is kept with each trial's final result in the Optuna study."""
    info = metric_info(name)
    return info is not None and info.summary


def reported_only(result: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a result that are metrics of this table.

    Tune adds its own bookkeeping to every result (`time_total_s`, `training_iteration`,
    `pid`, ...); what a search records as a trial's metrics is what the trainer measured.
    """
    return {k: v for k, v in result.items() if metric_info(k) is not None}


def natural_direction(name: str) -> Direction:
    """The direction an objective on this metric takes when its spec leaves `mode` out.

    Raises:
        KeyError: name is not an objective metric.
    """
    info = metric_info(name)
    if info is None or info.direction is None:
        raise KeyError(name)
    return info.direction


def check_objective_metric(name: str) -> str:
    """Return name when an objective may use it; raise ValueError naming the closest otherwise.

    A metric at a test resolution (val_top1@48) is checked here by its form only; whether the
    recipe evaluates at that resolution is a cross-section check (rsearch.spec.checks).
    """
    info = metric_info(name)
    if info is not None and info.direction is not None:
        return name
    choices = f"; use one of {', '.join(OBJECTIVE_METRICS)}"
    if "@" in name and name.partition("@")[0] in BY_NAME:
        with_suffix = [m.name for m in METRICS if m.per_resolution]
        means = [m.name for m in METRICS if m.mean_resolution]
        reason = "not a metric the trainer reports"
        hint = (
            f"; name@N (N a test resolution) is reported for {', '.join(with_suffix)}, "
            f"name@{MEAN} for {', '.join(means)}"
        )
    elif name in BY_NAME:
        reason, hint = "it has no better direction to optimise", choices
    else:
        reason = "not a metric the trainer reports"
        hint = suggest(name, list(OBJECTIVE_METRICS)) or choices
    raise ValueError(f"{name!r} is not allowed: {reason}{hint}")
