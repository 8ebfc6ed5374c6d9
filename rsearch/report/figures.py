"""The report's figures, one function each, drawn with matplotlib's Agg backend into PNGs.

Every figure has a title and axis labels with units, and labels each point or curve with its
Optuna trial number (`#3`), the number `rsearch best` and MLflow's child runs show too.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display, no GUI toolkit

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rsearch.report.data import SearchRecord, TrialRecord  # noqa: E402
from rsearch.report.importance import Importances  # noqa: E402
from rsearch.report.labels import field_label, metric_label  # noqa: E402
from rsearch.report.pareto import ACCURACY, Axis, accuracy_front, measured  # noqa: E402
from rsearch.report.spread import spread_of, within_spread  # noqa: E402

DPI = 110
FRONT_COLOR = "tab:red"
OTHER_COLOR = "tab:gray"


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _log_if_wide(ax: Any, values: list[float], axis: str) -> None:
    # A log scale helps only when the values span a decade or more.
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and positive and max(positive) / min(positive) >= 10:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _label_points(ax: Any, points: list[tuple[float, float, int]]) -> None:
    """Label each point with its trial number; trials at the same point share one label."""
    at: dict[tuple[float, float], list[int]] = {}
    for x, y, number in points:
        at.setdefault((x, y), []).append(number)
    for (x, y), numbers in at.items():
        text = ", ".join(f"#{n}" for n in sorted(numbers))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)


def pareto_figure(search: SearchRecord, axis: Axis, path: Path) -> Path:
    """Validation top-1 against a measured cost, the non-dominated trials highlighted.

    Speed measured with a spread gets +-spread bars; front points whose order the spread
    leaves open (see `rsearch.report.spread`) are drawn hollow.
    """
    trials = measured(search, axis)
    front = accuracy_front(search, axis)
    fig = Figure(figsize=(7, 4.8))
    ax = fig.subplots()
    _front_points(ax, axis, trials, front, within_spread(search, axis))
    _spread_bars(ax, axis, trials)
    line = sorted((t for t in trials if t.number in front), key=lambda t: t.metrics[axis.metric])
    ax.plot(
        [t.metrics[axis.metric] for t in line],
        [t.metrics[ACCURACY] for t in line],
        color=FRONT_COLOR,
        linewidth=1.5,
        drawstyle="steps-post" if axis.direction == "min" else "steps-pre",
    )
    _label_points(ax, [(t.metrics[axis.metric], t.metrics[ACCURACY], t.number) for t in trials])
    if axis.log:
        _log_if_wide(ax, [t.metrics[axis.metric] for t in trials], "x")
    better = "right" if axis.direction == "max" else "left"
    ax.set_title(f"Speed–accuracy trade-off: top-1 vs {axis.metric} (better: up and {better})")
    ax.set_xlabel(axis.label)
    ax.set_ylabel(metric_label(ACCURACY))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path)


def _front_points(
    ax: Any, axis: Axis, trials: list[TrialRecord], front: set[int], unresolved: set[int]
) -> None:
    """Dominated trials grey, front trials red; hollow where the spread leaves the order open."""
    groups = (
        ("dominated", OTHER_COLOR, [t for t in trials if t.number not in front]),
        ("front", FRONT_COLOR, [t for t in trials if t.number in front - unresolved]),
        ("front, within spread", "none", [t for t in trials if t.number in unresolved]),
    )
    for name, face, group in groups:
        if not group and face == "none":
            continue  # no hollow entry in the legend of a search without one
        ax.scatter(
            [t.metrics[axis.metric] for t in group],
            [t.metrics[ACCURACY] for t in group],
            facecolors=face,
            edgecolors=OTHER_COLOR if face == OTHER_COLOR else FRONT_COLOR,
            linewidths=1.5,
            s=50,
            zorder=3,
            label=f"{name} ({len(group)})",
        )


def _spread_bars(ax: Any, axis: Axis, trials: list[TrialRecord]) -> None:
    """+-spread on the speed axis for the trials that measured one."""
    with_spread = [(t, s) for t in trials if (s := spread_of(t, axis)) is not None]
    if not with_spread:
        return
    ax.errorbar(
        [t.metrics[axis.metric] for t, _ in with_spread],
        [t.metrics[ACCURACY] for t, _ in with_spread],
        xerr=[t.metrics[axis.metric] * s / 100 for t, s in with_spread],
        fmt="none",
        ecolor=OTHER_COLOR,
        elinewidth=1,
        capsize=3,
        zorder=2,
        label="± measured spread",
    )


def importance_figure(importances: Importances, path: Path) -> Path:
    """Horizontal bars of each parameter's fANOVA importance, one panel per objective."""
    panels = importances.by_objective
    height = 1.2 + 0.45 * max(len(v) for v in panels.values())
    fig = Figure(figsize=(7, height * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (metric, values) in zip(axes, panels.items(), strict=True):
        names = list(reversed(values))  # most important on top
        ax.barh(names, [values[n] for n in names], color="tab:blue")
        for y, name in enumerate(names):
            ax.text(values[name], y, f" {values[name]:.2f}", va="center", fontsize=9)
        ax.set_xlim(0, 1.1)
        ax.set_title(f"Parameter importance for {metric} (fANOVA)")
        ax.set_xlabel("share of the objective's variance (fraction, sums to 1)")
        ax.set_ylabel("searched parameter")
    fig.tight_layout()
    return _save(fig, path)


def parallel_figure(search: SearchRecord, path: Path) -> Path:
    """Optuna's parallel-coordinates plot of the searched parameters, coloured by objective 1."""
    import optuna

    objective = search.spec.objective[0].metric
    with warnings.catch_warnings():
        # Experimental API, and a flat axis when a value did not vary: both only noise here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        ax = optuna.visualization.matplotlib.plot_parallel_coordinate(
            search.study, target=lambda t: t.values[0], target_name=objective
        )
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    # Optuna's Blues fades the best trial to near white; viridis keeps every line visible.
    for collection in ax.collections:
        collection.set_cmap(
            "viridis_r" if search.spec.objective[0].direction == "min" else "viridis"
        )
    fig.set_size_inches(max(7.0, 2.2 * (len(search.spec.space) + 1)), 4.8)
    ax.set_title(f"Searched parameters of completed trials, coloured by {metric_label(objective)}")
    _save(fig, path)
    import matplotlib.pyplot as plt

    plt.close(fig)  # Optuna draws through pyplot, which keeps every figure until closed
    return path


def curves_figure(search: SearchRecord, top: list[TrialRecord], path: Path) -> Path:
    """Per-epoch curves of the top trials (solid) and the early-stopped ones (dashed, cut at x)."""
    fig = Figure(figsize=(7, 4.8))
    ax = fig.subplots()
    for t in top:
        if t.curve:
            ax.plot(list(t.curve), list(t.curve.values()), marker="o", label=f"#{t.number}")
    cuts: list[tuple[int, float, str, int]] = []
    for t in search.in_state("PRUNED", "RUNNING"):
        if not t.curve:
            continue
        last = max(t.curve)
        kind = "stopped" if t.state == "PRUNED" else "running"
        ax.plot(list(t.curve), list(t.curve.values()), linestyle="--", color=OTHER_COLOR, lw=1)
        ax.scatter([last], [t.curve[last]], marker="x", color=OTHER_COLOR, s=45, zorder=3)
        cuts.append((last, t.curve[last], kind, t.number))
    _label_cuts(ax, cuts)
    ax.axvline(search.spec.budget_epochs, color="black", linestyle=":", lw=1, label="budget")
    ax.set_title(f"Learning curves: top trials and early-stopped ones ({search.curve_metric})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label(search.curve_metric))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, title="trial")
    return _save(fig, path)


def _label_cuts(ax: Any, cuts: list[tuple[int, float, str, int]]) -> None:
    """Label where trials stopped; cuts at one epoch closer than a label's height share one."""
    low, high = ax.get_ylim()
    gap = 0.05 * (high - low)  # about one 8-pt line on a 4.8-inch axis
    groups: list[list[tuple[int, float, str, int]]] = []
    for cut in sorted(cuts, key=lambda c: (c[0], c[2], c[1])):
        last = groups[-1][-1] if groups else None
        if last and last[0] == cut[0] and last[2] == cut[2] and cut[1] - last[1] < gap:
            groups[-1].append(cut)
        else:
            groups.append([cut])
    for group in groups:
        epoch, _, kind, _ = group[0]
        numbers = ", ".join(f"#{c[3]}" for c in sorted(group, key=lambda c: c[3]))
        ax.annotate(
            f"{numbers} {kind} @ {epoch}",
            (epoch, sum(c[1] for c in group) / len(group)),
            textcoords="offset points",
            xytext=(5, -10),
            fontsize=8,
            color="dimgray",
        )


def scaling_figure(search: SearchRecord, fields: list[str], path: Path) -> Path:
    """Validation top-1 against each varied scaling dimension (depth, width, resolution)."""
    trials = [t for t in search.in_state("COMPLETE") if ACCURACY in t.metrics]
    fig = Figure(figsize=(4.2 * len(fields), 4.2))
    axes = fig.subplots(1, len(fields), squeeze=False)[0]
    for ax, field in zip(axes, fields, strict=True):
        xs = [_scaling_x(t.scaling.get(field)) for t in trials]
        ys = [t.metrics[ACCURACY] for t in trials]
        ax.scatter(xs, ys, color="tab:blue", s=45, zorder=3)
        _label_points(ax, [(x, y, t.number) for t, x, y in zip(trials, xs, ys, strict=True)])
        ax.set_title(f"top-1 vs {field}")
        ax.set_xlabel(field_label(field))
        ax.set_ylabel(metric_label(ACCURACY))
        ax.grid(True, alpha=0.3)
    fig.suptitle("Scaling: accuracy against depth, width and resolution")
    fig.tight_layout()
    return _save(fig, path)


def _scaling_x(value: Any) -> float:
    # model.layers is a list of blocks per stage; its total is the depth a reader compares.
    if isinstance(value, list):
        return float(sum(value))
    return float(value) if value is not None else float("nan")
