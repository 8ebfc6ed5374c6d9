"""Human labels, with units, for the metrics and recipe fields a report shows."""

from __future__ import annotations

from rsearch.spec.metric_names import metric_info
from rsearch.spec.metrics import METRICS

METRIC_LABELS = {m.name: m.label for m in METRICS}
"""Each reported metric's label, from the one table of metrics."""

FIELD_LABELS = {
    "model.depth_multiplier": "depth multiplier (x blocks per stage)",
    "model.width_multiplier": "width multiplier (x channels)",
    "model.layers": "blocks in all stages (model.layers)",
    "data.image_size": "training resolution (px)",
}


def metric_label(metric: str) -> str:
    """The metric's label with its unit (val_top1@48's included), or its name when unknown."""
    info = metric_info(metric)
    return info.label if info is not None else metric


def field_label(path: str) -> str:
    """A recipe field's label with its unit, or its dotted path."""
    return FIELD_LABELS.get(path, path)
