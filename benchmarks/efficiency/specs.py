"""The benchmark's search as an rsearch spec: the table's base recipe and the grid's space."""

from __future__ import annotations

import json
from typing import Any

import yaml

from benchmarks.efficiency.table import (
    BASE_RECIPE,
    GRID,
    KINDS,
    PROGRESSIVE_STAGES,
    Grid,
    search_range,
)

MAX_TRIALS = 100_000
"""num_trials of every spec: high enough that only the compute budget ends a search."""

REDUCTION_FACTOR = 3
"""Successive halving keeps a third at each rung (rsearch's and Ray's default), all methods."""


def base_recipe(kind: str) -> dict[str, Any]:
    """The base recipe of a curve kind."""
    base = json.loads(json.dumps(BASE_RECIPE))
    if kind not in KINDS:
        raise ValueError(f"unknown curve kind {kind!r}; known: {', '.join(KINDS)}")
    if kind == "progressive":
        base["data"]["progressive"] = PROGRESSIVE_STAGES
    return base


def first_stage_fidelity() -> float:
    """Compute of the progressive recipe's first stage, in full-fidelity epoch equivalents."""
    from rsearch.plan.cost import recipe_fidelity
    from rsearch.spec.recipe import Recipe

    per_epoch = recipe_fidelity(Recipe.model_validate(base_recipe("progressive")))
    return sum(per_epoch[: PROGRESSIVE_STAGES[0]["epochs"]])


def scheduler_section(scheduler: str) -> dict[str, Any]:
    """none, asha-epochs (rungs at 1, 3, 9 epochs), asha-epochs-grace3 (3, 9) or asha-compute
    (rungs in fidelity units, the first after the first progressive stage)."""
    if scheduler == "none":
        return {"type": "none"}
    if scheduler == "asha-epochs":
        return {"type": "asha", "grace_period": 1, "reduction_factor": REDUCTION_FACTOR}
    if scheduler == "asha-epochs-grace3":  # rungs at 3 and 9 epochs only
        return {"type": "asha", "grace_period": 3, "reduction_factor": REDUCTION_FACTOR}
    if scheduler == "asha-compute":
        return {
            "type": "asha",
            "unit": "compute",
            "grace_period": round(first_stage_fidelity(), 6),
            "reduction_factor": REDUCTION_FACTOR,
        }
    raise ValueError(f"unknown scheduler {scheduler!r}")


def search_spec(
    kind: str,
    algorithm: str,
    scheduler: str,
    seed: int,
    concurrency: int = 2,
    grid: Grid = GRID,
) -> Any:
    """The rsearch SearchSpec of one replay, parsed from YAML as a user's file would be."""
    from rsearch.spec import parse_spec_text

    space = {}
    for path in grid:
        low, high, log = search_range(path, grid)
        space[path] = {"type": "float", "low": low, "high": high, "log": log}
    doc = {
        "name": f"efficiency-{kind}-{algorithm}-{scheduler}-{seed}",
        "objective": {"metric": "val_top1", "mode": "max"},
        "search": {
            "algorithm": algorithm,
            "num_trials": MAX_TRIALS,
            "max_concurrent": concurrency,
            "seed": seed,
        },
        "scheduler": scheduler_section(scheduler),
        "base": base_recipe(kind),
        "space": space,
    }
    return parse_spec_text(yaml.safe_dump(doc, sort_keys=False), name="search_efficiency")
