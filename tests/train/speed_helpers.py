"""What the speed tests run in processes of their own (started with spawn, so importable)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from rsearch.train.speed import SPEED_METRICS, SpeedKey, cached_speed

FAKE_METRICS = dict.fromkeys(SPEED_METRICS, 1.0)
"""A measurement's metrics where no model is timed."""


def tiny_key(image_size: int) -> SpeedKey:
    """The key of timm's test ResNet (4 classes) at a resolution, batch 16, one CPU thread."""
    return SpeedKey(
        model='{"name": "test_resnet"}',
        num_classes=4,
        image_size=image_size,
        batch=16,
        dtype="float32",
        channels_last=False,
        device_kind="cpu",
        threads=1,
    )


def measure_sizes(node: str, run_cache: str, sizes: list[int], barrier: Any, results: Any) -> None:
    """Measure timm's test ResNet at each size for real, starting when every process is ready.

    Puts [(size, source, entry), ...] on results.
    """
    import torch

    from rsearch.spec import Recipe
    from rsearch.train import measure
    from rsearch.train.model import build_model
    from tests.train.train_helpers import TINY

    measure.MEASURE_SECONDS = 0.25  # windows long enough to overlap if nothing kept them apart
    torch.set_num_threads(1)
    model = build_model(Recipe.model_validate(TINY), 4)
    barrier.wait()
    found = []
    for size in sizes:
        timing = functools.partial(
            measure.inference_speed, model, size, torch.device("cpu"), None, False, 16
        )
        got = cached_speed(tiny_key(size), timing, Path(run_cache), Path(node))
        found.append((size, got.source, got.entry))
    results.put(found)


def hold_measurement(node: str, ready: Any) -> None:
    """Take the node's lock and raise its quiet flag for a measurement that never ends."""

    def forever() -> dict[str, float]:
        ready.set()
        time.sleep(3600)
        return FAKE_METRICS

    cached_speed(tiny_key(16), forever, None, Path(node))
