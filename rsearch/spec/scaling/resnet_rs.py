"""The ResNet-RS paper's tables (arXiv:2103.07579): block layouts and regularisation by size."""

from __future__ import annotations

from typing import Any

RESNET_RS_LAYERS: dict[int, list[int]] = {
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
    200: [3, 24, 36, 3],
    270: [4, 29, 53, 4],
    350: [4, 36, 72, 4],
    420: [4, 44, 87, 4],
}
"""Blocks per stage of ResNet-RS depths (arXiv:2103.07579; timm's resnetrs*)."""


def resnet_rs_regularization(depth: int, image_size: int) -> dict[str, Any]:
    """The ResNet-RS paper's regularisation for a model size (arXiv:2103.07579).

    Its table fits three thresholds: RandAugment magnitude 10 up to 160 px, else 15;
    dropout 0.25, or 0.4 from 320 px; stochastic depth 0.1 from depth 200, else none.
    """
    return {
        "augment.randaugment_magnitude": 10.0 if image_size <= 160 else 15.0,
        "model.drop_rate": 0.4 if image_size >= 320 else 0.25,
        "model.drop_path_rate": 0.1 if depth >= 200 else 0.0,
    }
