"""The smallest input each architecture takes, found on torch's meta device.

Run as `python -m rsearch.train.input_probe` by rsearch.spec.input_size, which keeps torch and
timm out of `rsearch validate`: reads one JSON list of architecture keys (model sections as
JSON) per line on stdin and writes one line {key: {"family", "patch", "min_size"}} for each on
stdout, until stdin closes (one child serves every file a command validates).

The meta device propagates shapes without computing, so a forward pass at 1024 px costs what
one at 8 px does, and the kernels' shape checks ("Kernel size can't be greater than actual
input size") fire there as in training. Training mode with a batch of two: batch norm refuses
1x1 feature maps of a single image only.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from rsearch.spec.model_section import ModelConfig
from rsearch.spec.recipe import Recipe
from rsearch.train.model import build_model
from rsearch.train.vit import patch_family

SMALLEST = 8
LARGEST = 1024
"""The resolutions a recipe allows (data.image_size)."""


def takes(model: torch.nn.Module, size: int) -> bool:
    """Whether a training forward pass at size x size px goes through."""
    try:
        with torch.device("meta"):
            model(torch.empty(2, 3, size, size))
    except Exception:  # whatever a layer raises at a size it cannot take
        return False
    return True


def smallest_input(model: torch.nn.Module) -> int | None:
    """The smallest square input the model takes (binary search), None if not even LARGEST."""
    if takes(model, SMALLEST):
        return SMALLEST
    if not takes(model, LARGEST):
        return None
    low, high = SMALLEST, LARGEST  # refused at low, taken at high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if takes(model, mid) else (mid, high)
    return high


def facts(key: str) -> dict[str, Any]:
    """The input facts of one architecture (its input_size.PROBED fields as JSON)."""
    model_cfg = ModelConfig.model_validate(
        {k: v for k, v in json.loads(key).items() if v is not None}
    )
    family = patch_family(model_cfg.name)
    if family is not None:  # built for the run's resolution: its patch is what constrains it
        return {"family": family[0], "patch": family[1], "min_size": family[1]}
    recipe = Recipe(model=model_cfg.model_copy(update={"patch_size": None}))
    with torch.device("meta"):
        model = build_model(recipe, 10, load_weights=False)
    model.train()
    return {"family": None, "patch": None, "min_size": smallest_input(model)}


def answer(keys: list[str]) -> dict[str, Any]:
    """The facts of each key; a key whose model cannot be built is left out."""
    answers = {}
    for key in keys:
        try:
            answers[key] = facts(key)
        except Exception:  # noqa: BLE001 -- training reports an unbuildable model itself
            continue
    return answers


def main() -> None:
    """Answer each line of keys read on stdin with one line on stdout."""
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
