"""Numbers, tables and the figure of a replay: per method and seed, then over seeds."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from benchmarks.efficiency.ledger import Ledger
from benchmarks.efficiency.table import Table


def target_top1(table: Table, percentile: float = 90.0) -> float:
    """The target: a percentile of the final top-1 of the epoch curves (= random recipes).

    Every grid value is equally likely under the search space (table.search_range), so the
    grid's recipes are the distribution of random recipes.
    """
    import numpy as np

    return float(np.percentile(table.finals("epochs"), percentile))


def spread(table: Table, kind: str) -> dict[str, float]:
    """How far apart the final top-1 of a kind's recipes lie."""
    import numpy as np

    finals = table.finals(kind)
    p10, p50, p90 = np.percentile(finals, [10, 50, 90])
    return {
        "min": min(finals),
        "p10": float(p10),
        "median": float(p50),
        "p90": float(p90),
        "max": max(finals),
        "recipes": len(finals),
    }


def rank_correlations(table: Table, kind: str) -> dict[int, float]:
    """Spearman's rho between each epoch's top-1 and the final top-1, over the kind's recipes."""
    from scipy.stats import spearmanr

    curves = list(table.curves[kind].values())
    finals = [c.final for c in curves]
    out = {}
    for epoch in range(1, curves[0].epochs):
        rho = spearmanr([c.val_top1[epoch - 1] for c in curves], finals).statistic
        out[epoch] = float(rho)
    return out


def over_seeds(values: list[float | None]) -> dict[str, Any]:
    """Median, min and max over seeds; a seed that never got there counts as infinite."""
    xs = sorted(math.inf if v is None else float(v) for v in values)
    med = statistics.median(xs)
    return {
        "median": None if math.isinf(med) else med,
        "min": None if math.isinf(xs[0]) else xs[0],
        "max": None if math.isinf(xs[-1]) else xs[-1],
        "reached": sum(1 for v in values if v is not None),
        "seeds": len(values),
    }


def method_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A method's numbers over its seeds."""
    keys = (
        "to_target_full_trials",
        "to_target_train_full_trials",
        "to_target_seconds",
        "best_at_budget",
        "trials",
        "wall_s",
    )
    return {k: over_seeds([r[k] for r in runs]) for k in keys} | {
        "machinery_s": over_seeds([r["machinery_s"] for r in runs])
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing (never reached)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def curve_points(ledger: Ledger, full_trial_flops: float) -> list[tuple[float, float]]:
    """(compute in full-trial equivalents, best full-budget top-1) after each counted epoch."""
    return [(f / full_trial_flops, best) for f, _t, _s, best in ledger.trajectory()]


def plot(
    curves: dict[str, list[list[tuple[float, float]]]],
    target: float,
    budget_trials: float,
    path: Path,
) -> None:
    """Two panels against compute: the median best-so-far top-1 over seeds, and the share of
    seeds whose search had found a recipe at the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.linspace(0, budget_trials, 600)
    fig, (best, reached) = plt.subplots(1, 2, figsize=(13, 5))
    for i, (label, seeds) in enumerate(curves.items()):
        rows = np.array([_step(points, grid) for points in seeds])
        # A seed without a finished trial yet has found nothing (-inf): the median shows once
        # half the seeds have an answer.
        median = np.median(np.nan_to_num(rows, nan=-np.inf), axis=0)
        median[~np.isfinite(median)] = np.nan
        style = {"label": label, "linestyle": "-" if label.startswith(("rsearch", "ray")) else "--"}
        style["color"] = plt.get_cmap("tab10")(i % 10)
        best.plot(grid, median, **style)
        reached.plot(grid, 100 * np.mean(np.nan_to_num(rows, nan=0.0) >= target, axis=0), **style)
    best.axhline(target, color="k", linestyle=":", linewidth=1, label=f"target {target:.1f}%")
    best.set_ylabel("best full-budget val top-1 so far (%), median over seeds")
    best.set_ylim(target - 8, None)
    best.legend(loc="lower right", fontsize=8)
    best.set_title("Best recipe found")
    reached.set_ylabel(f"seeds that have found a recipe >= {target:.1f}% (%)")
    reached.set_title("Searches at the target")
    for ax in (best, reached):
        ax.set_xlabel("compute spent (full-budget trials of FLOPs, training + evaluation)")
        ax.set_xlim(0, budget_trials)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _step(points: list[tuple[float, float]], grid: Any) -> Any:
    """A best-so-far trajectory sampled on grid (NaN before the first finished trial)."""
    import numpy as np

    out = np.full(len(grid), np.nan)
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    for i, x in enumerate(grid):
        j = np.searchsorted(xs, x, side="right") - 1
        if j >= 0:
            out[i] = ys[j]
    if len(ys) and not np.isnan(ys[-1]):
        out[grid > xs[-1]] = ys[-1]  # a search that stopped keeps its answer
    return out
