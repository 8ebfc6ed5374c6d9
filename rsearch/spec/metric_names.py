"""Metric names beyond the table's rows, and every lookup of a name in the table.

One explicit pattern rule extends the table (rsearch.spec.metrics): a metric marked
`per_resolution` is also reported at each test resolution N of data.eval_resolutions as
`name@N` (val_top1@48), and one marked `mean_resolution` as `name@mean`, their average.
`metric_info` understands both forms.

A second rule: a metric marked `per_split` (val_top1, val_auc, ...) is also reported for each
extra evaluation split of data.eval_splits as `<split>_<rest>` (rotated_top1 for a split named
`rotated`); split names are identifiers that are no prefix of a table metric (`split_name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rsearch.spec.metrics import BY_NAME, METRICS, OBJECTIVE_METRICS, Direction, MetricInfo
from rsearch.spec.names import suggest

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
