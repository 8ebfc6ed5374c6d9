"""Objectives on evaluation metrics against the base recipe that must report them: an extra
split's metric (rotated_top1) needs the split in data.eval_splits, a two-class metric
(val_sensitivity) a task known to have two classes, a class metric data.class_metrics on.

A search cannot vary these data fields (a mapping, or a switch that would drop the objective),
so the base recipe's values are every trial's.
"""

from __future__ import annotations

from rsearch.spec.data_section import DataConfig
from rsearch.spec.errors import Problem
from rsearch.spec.metric_names import metric_info, split_of
from rsearch.spec.metrics import AUTO_MAX_CLASSES
from rsearch.spec.names import suggest
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Objective


def check_objective_evaluations(objectives: list[Objective], base: Recipe) -> list[Problem]:
    """One problem per objective its base recipe would not report."""
    problems = []
    for index, objective in enumerate(objectives):
        reason = _missing(objective.metric, base.data)
        if reason:
            problems.append(Problem(("objective", index, "metric"), reason))
    return problems


def _missing(metric: str, data: DataConfig) -> str | None:
    info = metric_info(metric)
    if info is None:
        return None  # the objective's own validation names it
    split = split_of(metric)
    if split is not None and split not in data.eval_splits:
        listed = ", ".join(data.eval_splits) or "none"
        hint = suggest(split, list(data.eval_splits)) if data.eval_splits else ""
        return (
            f"{metric} needs an evaluation split {split!r} in base.data.eval_splits "
            f"(it lists {listed}){hint}"
        )
    classes = _classes(data)
    auto_off = data.class_metrics is None and classes is not None and classes > AUTO_MAX_CLASSES
    if info.class_metric and (data.class_metrics is False or auto_off):
        return (
            f"{metric} is reported only with base.data.class_metrics true (null reports it up "
            f"to {AUTO_MAX_CLASSES} classes)"
        )
    if info.binary and classes not in (2, None):
        return (
            f"{metric} is reported for two-class tasks only; set base.data.one_vs_rest to a "
            f"class index to make this {classes}-class task binary"
        )
    return None


def _classes(data: DataConfig) -> int | None:
    """Classes of the task when the spec alone tells (None for folders and CIFAR: unread)."""
    if data.one_vs_rest is not None:
        return 2
    if data.dataset == "digits":
        return 10
    if data.dataset == "synthetic":
        return data.num_classes
    return {"cifar10": 10, "cifar100": 100}.get(data.dataset)
