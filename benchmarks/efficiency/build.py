"""Training the table: every grid recipe's real learning curve, with its compute per epoch.

Curves are trained in-process with `rsearch.train`'s training core, one torch thread per
process, `--jobs` processes at once. Finished curves are appended to a JSONL file next to the
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
    KINDS,
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
    from rsearch.spec.recipe import Recipe
    from rsearch.spec.space_paths import apply_params

    base = json.loads(json.dumps(BASE_RECIPE))
    if kind == "progressive":
        base["data"]["progressive"] = PROGRESSIVE_STAGES
    elif kind != "epochs":
        raise ValueError(f"unknown curve kind {kind!r}; known: {', '.join(KINDS)}")
    recipe = apply_params(Recipe.model_validate(base), params)
    return recipe.model_dump(mode="json")


def per_image_flops(recipe_doc: dict[str, Any]) -> tuple[dict[int, float], float, list[float]]:
    """(training FLOPs per image by train size, eval FLOPs per image, fidelity per epoch)."""
    import torch

    from rsearch.spec.recipe import Recipe
    from rsearch.train.measure import epoch_fidelity, forward_flops, train_flops
    from rsearch.train.model import build_model
    from rsearch.train.sources import count_classes

    recipe = Recipe.model_validate(recipe_doc)
    with torch.device("meta"):
        model = build_model(recipe, count_classes(recipe.data), load_weights=False)
    sizes = {recipe.stage_at(e)[0] for e in range(recipe.epochs)}
    train = {size: train_flops(model, size) for size in sizes}
    evaluation = forward_flops(model, eval_size(recipe))
    return train, evaluation, epoch_fidelity(model, recipe)


def eval_size(recipe: Any) -> int:
    """Evaluation resolution: the table's recipes evaluate at the final size every epoch."""
    if recipe.data.eval_rule != "final":
        raise ValueError("the table's recipes use data.eval_rule: final")
    return int(recipe.data.eval_image_size or recipe.data.image_size)


def train_curve(job: tuple[str, dict[str, float]]) -> dict[str, Any]:
    """Train one recipe and return its curve as a dict (run in a worker process)."""
    from rsearch.spec.recipe import Recipe
    from rsearch.train.loop import run_training
    from rsearch.train.sources import DIGITS_VAL_SIZE

    kind, params = job
    doc = recipe_dict(kind, params)
    recipe = Recipe.model_validate(doc)
    train_per_image, eval_per_image, fidelity = per_image_flops(doc)
    steps: dict[int, int] = {}
    history: list[dict[str, float]] = []

    def on_step(epoch: int, step: int, _steps: int) -> None:
        steps[epoch] = step

    start = time.perf_counter()
    run_training(recipe, lambda m, _c: history.append(m), on_step=on_step, threads=1)
    wall = time.perf_counter() - start
    train_flops = []
    for epoch in range(recipe.epochs):
        size, _share = recipe.stage_at(epoch)
        # The training loader drops the last partial batch: every step sees a whole batch.
        images = steps[epoch + 1] * recipe.data.batch_size
        train_flops.append(train_per_image[size] * images)
    return {
        "kind": kind,
        "params": params,
        "val_top1": [float(m["val_top1"]) for m in history],
        "train_flops": train_flops,
        "eval_flops": [eval_per_image * DIGITS_VAL_SIZE] * recipe.epochs,
        "seconds": [float(m["epoch_s"]) for m in history],
        "fidelity": fidelity,
        "steps": [steps[e + 1] for e in range(recipe.epochs)],
        "wall_s": wall,
    }


def check_stages_trained(row: dict[str, Any]) -> None:
    """Refuse a progressive curve whose epochs all took the same steps (stages not trained)."""
    if row["kind"] == "progressive" and len(set(row["steps"])) == 1:
        raise RuntimeError(
            "this rsearch's training loop ignores data.progressive (every epoch took "
            f"{row['steps'][0]} steps); build the progressive curves with a version that "
            "trains stages"
        )


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
            check_stages_trained(row)
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
