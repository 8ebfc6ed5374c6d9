"""train_flops counts a grouped convolution's weight gradient once per group, not as dense."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rsearch.train.measure import forward_flops, train_flops

SIZE = 16


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_depthwise_conv_backward_is_counted_per_group(device: str) -> None:
    with torch.device(device):
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),  # depthwise
        )
    dense = SIZE * SIZE * 8 * 3 * 9  # multiply-adds of one image through each conv
    depthwise = SIZE * SIZE * 8 * 1 * 9
    # forward of both; the first conv's weight gradient (its input needs none); the depthwise
    # conv's input and weight gradients, each as many multiply-adds as its forward.
    assert train_flops(model, SIZE) == 2 * (2 * dense + 3 * depthwise)
    assert forward_flops(model, SIZE) == 2 * (dense + depthwise)


def test_grouped_conv_with_several_channels_a_group() -> None:
    model = nn.Sequential(nn.Conv2d(3, 12, 1, bias=False), nn.Conv2d(12, 6, 3, groups=3))
    pointwise = 10 * 10 * 12 * 3
    grouped = 8 * 8 * 6 * 4 * 9  # 4 input channels a group, no padding: 8 x 8 out
    assert train_flops(model, 10) == 2 * (2 * pointwise + 3 * grouped)
