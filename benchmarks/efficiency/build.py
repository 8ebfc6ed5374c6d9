"""Training the table: every grid recipe's real learning curve, with its compute per epoch.

Curves are trained in-process with `rsearch.train.fit`, one torch thread per process, `--jobs`
processes at once. Finished curves are appended to a JSONL file next to the
table, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import time
from pathlib import Path
from typing import Any

from benchmarks.efficiency.table import (
    BASE_RECIPE,
    GRID,
    PROGRESSIVE_STAGES,
    Curve,
    Table,
    grid_points,
    key_of,
    load_table,
    save_table,
)


def recipe_dict(kind: str, params: dict[str, float]) -> dict[str, Any]:
    """The recipe (as a dict) of a grid point under a curve kind."""
    from benchmarks.efficiency.specs import base_recipe
    from rsearch.spec.recipe import Recipe
    from rsearch.spec.space_paths import apply_params

    recipe = apply_params(Recipe.model_validate(base_recipe(kind)), params)
    return recipe.model_dump(mode="json")


def train_curve(job: tuple[str, dict[str, float]]) -> dict[str, Any]:
    """Train one recipe and return its curve as a dict (run in a worker process).

    The compute of each epoch is what the training core reports (rsearch.train.compute):
    training FLOPs = train_flops(model, the epoch's train size) x training images seen,
    evaluation FLOPs = forward_flops(model, the epoch's eval size) x validation images.
    """
    from rsearch.spec.recipe import Recipe
    from rsearch.train import fit

    kind, params = job
    recipe = Recipe.model_validate(recipe_dict(kind, params))
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    fit(recipe, lambda m, _c: history.append(m), threads=1)
    wall = time.perf_counter() - start
    if "epoch_train_flops" not in history[0]:
        raise RuntimeError("this rsearch's training core does not report its compute per epoch")
    cumulative = [float(m["fidelity"]) for m in history]
    return {
        "kind": kind,
        "params": params,
        "val_top1": [float(m["val_top1"]) for m in history],
        "train_flops": [float(m["epoch_train_flops"]) for m in history],
        "eval_flops": [float(m["epoch_eval_flops"]) for m in history],
        "seconds": [float(m["epoch_s"]) for m in history],
        "fidelity": [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)],
        "train_image_size": [int(m["train_image_size"]) for m in history],
        "eval_image_size": [int(m["eval_image_size"]) for m in history],
        "wall_s": wall,
    }


def build_table(path: Path, kinds: list[str], jobs: int) -> Table:
    """Train the missing curves of the given kinds and write the table to path."""
    partial = path.with_suffix(".partial.jsonl")
    done = _read_partial(partial)
    table = load_table(path) if path.exists() else Table(meta=_meta())
    todo = [
        (kind, p)
        for kind in kinds
        for p in grid_points()
        if key_of(p) not in table.curves.get(kind, {}) and (kind, key_of(p)) not in done
    ]
    print(f"training {len(todo)} curves ({len(done)} already in {partial.name}), {jobs} at once")
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: one torch thread each
    with ctx.Pool(jobs, maxtasksperchild=8) as pool:
        for n, row in enumerate(pool.imap_unordered(train_curve, todo), start=1):
            done[(row["kind"], key_of(row["params"]))] = row
            with partial.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                f"  [{n}/{len(todo)}] {row['kind']:<11} {key_of(row['params']):<24} "
                f"top1 {row['val_top1'][-1]:5.1f}  {row['wall_s']:5.1f} s",
                flush=True,
            )
    build_s = time.perf_counter() - start
    for row in done.values():
        fields = {
            k: row[k]
            for k in ("params", "val_top1", "train_flops", "eval_flops", "seconds", "fidelity")
        }
        table.curves.setdefault(row["kind"], {})[key_of(row["params"])] = Curve(**fields)
    walls = table.meta.setdefault("curve_wall_s", {})
    for kind in kinds:
        rows = [r["wall_s"] for r in done.values() if r["kind"] == kind]
        if rows:  # summed over curves: the build's wall is about this over --jobs
            walls[kind] = round(sum(rows), 1)
    table.meta.setdefault("build_wall_s", {})[",".join(kinds)] = round(build_s, 1)
    save_table(table, path)
    partial.unlink(missing_ok=True)
    return table


def _read_partial(partial: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["kind"], key_of(row["params"]))] = row
    return rows


def _meta() -> dict[str, Any]:
    import timm
    import torch

    return {
        "base_recipe": BASE_RECIPE,
        "grid": {path: {"values": v, "log": log} for path, (v, log) in GRID.items()},
        "progressive_stages": PROGRESSIVE_STAGES,
        "threads_per_curve": 1,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores",
        "built": time.strftime("%Y-%m-%d"),
    }
