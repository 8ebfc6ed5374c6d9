"""What a recipe cannot ask of data read as a stream of packed shards (`data.dataset: shards`).

A shard stream has no list of its images: nothing can pick a subset or a class-balanced order
of them, relabel them, or size them on the device, and the labels' class counts are not in the
index. These recipes are refused at validation, naming the field, instead of training on
something other than what they say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rsearch.spec.data_section import DataConfig
    from rsearch.spec.recipe import LossConfig


def shard_refusal(data: DataConfig, loss: LossConfig) -> str | None:
    """Why the recipe's data and loss sections cannot train on shards, or None when they can."""
    if data.dataset != "shards":
        return None
    if data.fraction < 1.0 or any((s.fraction or 1.0) < 1.0 for s in data.progressive):
        return (
            "data.fraction and data.progressive fractions below 1 need a list of the images; "
            "shards are a stream: pack the subset you want to train on"
        )
    if data.train_resolutions:
        return "data.train_resolutions resizes in-memory data on the device; shards stream"
    if data.sampler == "balanced":
        return (
            "data.sampler: balanced draws images by index; shards stream in shard order "
            "(use loss.class_weights as a list instead)"
        )
    if data.one_vs_rest is not None:
        return "data.one_vs_rest relabels a listed dataset; pack the two-class folder instead"
    if loss.class_weights == "balanced":
        return (
            "loss.class_weights: balanced counts the training labels, which shards do not "
            "list; give the weights as a list, one per class"
        )
    return None
