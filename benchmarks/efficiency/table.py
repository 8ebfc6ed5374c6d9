"""The tabular benchmark: real learning curves of a grid of recipes, and lookups into it.

Each recipe of the grid is trained once with `rsearch.train` and its per-epoch val_top1 and
compute are stored. A search method then "trains" a trial by reading its curve: no method
trains anything, so every method can be run at the same compute budget with several seeds
(the protocol of HPOBench, LCBench and NAS-Bench).

Snapping rule: a proposal's value for each searched path is replaced by the nearest grid value,
measured in log space for log-scaled parameters and in linear space otherwise. The search space
given to every method spans the grid's cells (each grid value is the centre of an equal cell),
so a uniform (or log-uniform) sampler hits every grid value with the same probability.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Grid = dict[str, tuple[list[float], bool]]
"""Searched path -> (grid values, log scale)."""

GRID: Grid = {
    "optim.lr": ([0.004, 0.01, 0.025, 0.0625, 0.156, 0.39], True),
    "optim.weight_decay": ([1e-5, 1e-3], True),
    "loss.label_smoothing": ([0.0, 0.2], False),
    "augment.mixup": ([0.0, 0.4], False),
}
"""Searched path -> (grid values, log scale). 48 recipes."""

BASE_RECIPE: dict[str, Any] = {
    "model": {"name": "resnet18"},
    "data": {"dataset": "digits", "image_size": 32, "batch_size": 16, "fraction": 0.15},
    "optim": {"name": "sgd", "momentum": 0.9},
    "schedule": {"name": "cosine", "warmup_epochs": 0},
    # Digits are upscaled 8x8 glyphs: a small random crop cuts the digit away, a flip changes it.
    "augment": {"random_resized_crop": False, "hflip": 0.0},
    "epochs": 9,
    "seed": 0,
}
"""Every recipe of the grid is this with the grid's values applied (laptop_digits' choices)."""

PROGRESSIVE_STAGES: list[dict[str, Any]] = [
    {"epochs": 3, "image_size": 16, "fraction": 0.25},
    {"epochs": 3, "image_size": 24},
]
"""The progressive kind: 16 px on a quarter of the subset, then 24 px, then 32 px."""

KINDS = ("epochs", "progressive")
"""Curve kinds: constant 32 px on the whole subset; the same recipe with PROGRESSIVE_STAGES
(evaluated at 32 px every epoch: data.eval_rule final)."""


def grid_points(grid: Grid = GRID) -> list[dict[str, float]]:
    """Every recipe of the grid as {path: value}, in a fixed order."""
    paths = list(grid)
    values = [grid[p][0] for p in paths]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*values)]


def cell_edges(values: list[float], log: bool) -> tuple[float, float]:
    """The search range whose equal cells are centred on the grid values."""
    if len(values) == 1:
        return values[0], values[0]
    if log:
        step = math.log(values[1] / values[0])
        return values[0] * math.exp(-step / 2), values[-1] * math.exp(step / 2)
    step = values[1] - values[0]
    return values[0] - step / 2, values[-1] + step / 2


def search_range(path: str, grid: Grid = GRID) -> tuple[float, float, bool]:
    """(low, high, log) of a searched path: the grid's cells for log-scaled ones.

    A linear range spans the first to the last grid value instead (a range below zero would
    propose invalid label smoothing or mixup alphas): its two end cells are half as wide as
    the others, so with two values (as here) both are still equally likely.
    """
    values, log = grid[path]
    low, high = cell_edges(values, log)
    if not log:
        low = max(low, 0.0)
        high = values[-1]
    return low, high, log


def snap(path: str, value: float, grid: Grid = GRID) -> float:
    """The grid value nearest to value (in log space for log-scaled paths)."""
    values, log = grid[path]
    if log:
        return min(values, key=lambda v: abs(math.log(v) - math.log(value)))
    return min(values, key=lambda v: abs(v - value))


def snap_point(params: dict[str, float], grid: Grid = GRID) -> dict[str, float]:
    """Every searched value of a proposal snapped to the grid."""
    return {p: snap(p, float(params[p]), grid) for p in grid}


def key_of(params: dict[str, float], grid: Grid = GRID) -> str:
    """The table key of a (snapped) point: its values in the grid's order."""
    return ",".join(f"{params[p]:g}" for p in grid)


@dataclass
class Curve:
    """One recipe's learning curve and what each epoch cost."""

    params: dict[str, float]
    val_top1: list[float]
    train_flops: list[float]
    eval_flops: list[float]
    seconds: list[float]
    fidelity: list[float]
    """Each epoch's training compute in full-fidelity epoch equivalents (measure.epoch_fidelity)."""

    @property
    def flops(self) -> list[float]:
        """Training plus evaluation FLOPs of each epoch."""
        return [t + e for t, e in zip(self.train_flops, self.eval_flops, strict=True)]

    @property
    def epochs(self) -> int:
        """Epochs of the curve (the full budget)."""
        return len(self.val_top1)

    @property
    def final(self) -> float:
        """val_top1 at the full budget."""
        return self.val_top1[-1]


@dataclass
class Table:
    """Curves by kind and point, with the metadata of how they were measured."""

    meta: dict[str, Any]
    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)

    @property
    def grid(self) -> Grid:
        """The grid the table's curves were trained on (its metadata; GRID by default)."""
        if "grid" not in self.meta:
            return GRID
        return {p: (g["values"], g["log"]) for p, g in self.meta["grid"].items()}

    def lookup(self, kind: str, params: dict[str, float]) -> Curve:
        """The curve of the grid point nearest to params."""
        return self.curves[kind][key_of(snap_point(params, self.grid), self.grid)]

    def finals(self, kind: str) -> list[float]:
        """Final val_top1 of every recipe of a kind."""
        return [c.final for c in self.curves[kind].values()]

    def full_trial_flops(self, kind: str = "epochs") -> float:
        """FLOPs of one full-budget trial (the median over the kind's recipes)."""
        totals = sorted(sum(c.flops) for c in self.curves[kind].values())
        return totals[len(totals) // 2]

    def to_json(self) -> dict[str, Any]:
        """The table as a JSON document."""
        return {
            "meta": self.meta,
            "curves": {
                kind: [vars(c) for c in curves.values()] for kind, curves in self.curves.items()
            },
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Table:
        """A table read back from to_json's document."""
        table = cls(meta=doc["meta"])
        for kind, items in doc["curves"].items():
            table.curves[kind] = {key_of(c["params"], table.grid): Curve(**c) for c in items}
        return table


def load_table(path: Path) -> Table:
    """Read a table file."""
    return Table.from_json(json.loads(Path(path).read_text()))


def save_table(table: Table, path: Path) -> None:
    """Write a table file (sorted, indented: it is committed and diffed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table.to_json(), indent=1) + "\n")
