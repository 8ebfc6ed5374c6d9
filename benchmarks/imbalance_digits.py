"""Minority-class recall on an imbalanced digits task, with and without balancing.

A two-class image folder is written from scikit-learn's digits: train/ holds 3s and 8s at
10:1 (--majority 3s, a tenth as many 8s) and no val/ folder, so `data.val_fraction` carves a
stratified validation split from it. Each arm trains the same recipe (timm's test_resnet at
32 px, seed 0): uniform order and plain cross-entropy; `loss.class_weights: balanced`;
`data.sampler: balanced`. Each trained model is then scored on every 3 and 8 the training
folder left out (a balanced held-out set) with per-class recall computed here.

    .venv/bin/python benchmarks/imbalance_digits.py --epochs 8
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import timm.data
import torch
from PIL import Image
from sklearn.datasets import load_digits

from rsearch.spec import Recipe
from rsearch.train import fit
from rsearch.train.augment import Normalize
from rsearch.train.checkpoint import CHECKPOINT_NAME, load_file
from rsearch.train.model import build_model
from rsearch.train.sources import decode_file

ARMS: dict[str, dict[str, Any]] = {
    "uniform": {},
    "class_weights: balanced": {"loss": {"class_weights": "balanced"}},
    "sampler: balanced": {"data": {"sampler": "balanced"}},
}
SIZE = 32


def write_images(root: Path, majority: int) -> dict[int, list[Path]]:
    """Write train/d3 (majority images) and train/d8 (a tenth); return the held-out files."""
    digits = load_digits()
    held: dict[int, list[Path]] = {}
    for label, (digit, count) in enumerate([(3, majority), (8, max(2, majority // 10))]):
        images = digits.images[digits.target == digit]
        for part, chosen in (("train", images[:count]), ("held", images[count:])):
            folder = root / part / f"d{digit}"
            folder.mkdir(parents=True)
            for i, image in enumerate(chosen):
                Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
        held[label] = sorted((root / "held" / f"d{digit}").glob("*.png"))
    return held


def recall(recipe: Recipe, checkpoint: Path, held: dict[int, list[Path]]) -> list[float]:
    """Per-class recall of a trained checkpoint on the held-out images (eval at SIZE px)."""
    model = build_model(recipe, 2, load_weights=False)
    model.load_state_dict(load_file(checkpoint / CHECKPOINT_NAME)["model"])
    model.eval()
    cfg = timm.data.resolve_model_data_config(model)
    norm = Normalize(cfg["mean"], cfg["std"], torch.device("cpu"))
    out = []
    for label in sorted(held):
        batch = torch.stack([decode_file(p, SIZE) for p in held[label]])
        with torch.no_grad():
            predicted = model(norm(batch)).argmax(1)
        out.append(float((predicted == label).float().mean()))
    return out


def main() -> None:
    """Train every arm and print a Markdown table of recalls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--majority", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        held = write_images(root, args.majority)
        print(f"held out: {len(held[0])} 3s, {len(held[1])} 8s\n")
        print("| arm | val_top1 (carved, 10:1) | recall 3 | recall 8 (minority) |")
        print("|---|---|---|---|")
        for name, override in ARMS.items():
            base: dict[str, Any] = {
                "model": {"name": "test_resnet"},
                "data": {
                    "dataset": "image_folder",
                    "path": str(root),
                    "val_fraction": 0.25,
                    "image_size": SIZE,
                    "batch_size": 16,
                },
                "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.05},
                "epochs": args.epochs,
                "deterministic": True,
            }
            base["data"].update(override.get("data", {}))
            base["loss"] = override.get("loss", {})
            recipe = Recipe.model_validate(base)
            metrics = fit(recipe, checkpoint_dir=root / "ckpt" / name.replace(" ", "_"))
            r3, r8 = recall(recipe, root / "ckpt" / name.replace(" ", "_"), held)
            print(f"| {name} | {metrics['val_top1']:.1f} | {r3:.3f} | {r8:.3f} |", flush=True)


if __name__ == "__main__":
    main()
