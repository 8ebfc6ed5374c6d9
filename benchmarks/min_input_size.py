"""The smallest input each model trains at, as rsearch builds it (docs/recipes.md cites it).

For each timm name: build the model with rsearch's build_model on the meta device and run a
forward pass at decreasing square sizes; the smallest size that passes is the model's minimum,
and any larger tried size that fails is named too. Then one real training step (SGD, batch 2,
random images) runs at that size on the CPU, so the stated size is one that trains, not only
one that shapes.

    .venv/bin/python benchmarks/min_input_size.py
    .venv/bin/python benchmarks/min_input_size.py --models nf_resnet26 inception_resnet_v2
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rsearch.spec.recipe import Recipe
from rsearch.train.model import build_model

MODELS = [
    "lambda_resnet26t",
    "lambda_resnet26rpt_256",
    "lambda_resnet50ts",
    "inception_resnet_v2",
    "nf_resnet26",
    "nf_resnet50",
    "nf_regnet_b0",
    "nfnet_f0",
    "dm_nfnet_f0",
    "nfnet_l0",
    "eca_nfnet_l0",
    "resnetv2_50d_evos",
    "resnetv2_50d_gn",
    "resnetv2_50d_frn",
]
SIZES = [256, 224, 192, 160, 128, 112, 96, 80, 64, 48, 32, 16]


def shapes_at(name: str, size: int) -> str | None:
    """None when a meta forward pass at size works, else the error's first line."""
    with torch.device("meta"):
        model = build_model(Recipe.model_validate({"model": {"name": name}}), 10, False)
        try:
            model(torch.empty(2, 3, size, size))
        except Exception as e:  # any refusal of the shape: kernel larger than input, asserts
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:120]
    return None


def smallest(name: str) -> tuple[int | None, str]:
    """The smallest size that passes, and the tried sizes above it that fail (with why)."""
    errors = {size: shapes_at(name, size) for size in SIZES}
    passing = [size for size, error in errors.items() if error is None]
    if not passing:
        return None, f"{SIZES[0]} px: {errors[SIZES[0]]}"
    low = min(passing)
    failing = [f"{size} px: {errors[size]}" for size in SIZES if size > low and errors[size]]
    below = [size for size in SIZES if size < low]
    note = f"{below[0]} px: {errors[below[0]]}" if below else ""
    return low, "; ".join([*failing[:1], note] if failing else [note])


def train_step(name: str, size: int) -> float:
    """Seconds of one real SGD step at size (batch 2)."""
    torch.manual_seed(0)
    model = build_model(Recipe.model_validate({"model": {"name": name}}), 10, False)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images, labels = torch.randn(2, 3, size, size), torch.tensor([0, 1])
    start = time.perf_counter()
    loss = nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    if not torch.isfinite(loss):
        raise RuntimeError(f"{name}: loss {loss.item()} at {size} px")
    return time.perf_counter() - start


def main() -> None:
    """Print one markdown table row per model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| timm name | smallest input | one training step | refused (first above, then below) |")
    print("|---|---|---|---|")
    for name in args.models:
        size, refusal = smallest(name)
        step = f"{train_step(name, size):.2f} s" if size else "-"
        print(f"| `{name}` | {size} px | {step} | {refusal or '-'} |", flush=True)


if __name__ == "__main__":
    main()
