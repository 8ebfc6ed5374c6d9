"""Human labels, with units, for the metrics and recipe fields a report shows."""

from __future__ import annotations

METRIC_LABELS = {
    "val_top1": "validation top-1 (%)",
    "val_top5": "validation top-5 (%)",
    "ema_val_top1": "EMA validation top-1 (%)",
    "val_loss": "validation loss",
    "train_loss": "training loss",
    "train_images_per_s": "training throughput (images/s)",
    "infer_images_per_s": "inference throughput (images/s)",
    "infer_latency_ms": "inference latency (ms, batch of 1)",
    "params_m": "parameters (M)",
    "gflops": "GFLOPs per image",
    "epoch_s": "epoch time (s)",
}

FIELD_LABELS = {
    "model.depth_multiplier": "depth multiplier (x blocks per stage)",
    "model.width_multiplier": "width multiplier (x channels)",
    "model.layers": "blocks in all stages (model.layers)",
    "data.image_size": "training resolution (px)",
}


def metric_label(metric: str) -> str:
    """The metric's label with its unit, or its name when it has none."""
    return METRIC_LABELS.get(metric, metric)


def field_label(path: str) -> str:
    """A recipe field's label with its unit, or its dotted path."""
    return FIELD_LABELS.get(path, path)
