"""The report's in- against out-of-distribution section: each completed trial's validation
top-1 beside its top-1 on every extra evaluation split (data.eval_splits), as a table and a
scatter figure with the y = x line (a point below it lost accuracy out of distribution).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display, no GUI toolkit

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

from rsearch.report.data import SearchRecord, TrialRecord  # noqa: E402
from rsearch.report.figures import DPI, _label_points  # noqa: E402
from rsearch.report.render import Section, Table  # noqa: E402
from rsearch.spec.metric_names import at_split  # noqa: E402

IN_DISTRIBUTION = "val_top1"

TOP_ROWS = 10
"""Trials in the table: the best by validation top-1."""


def ood_section(search: SearchRecord, out_dir: Path) -> Section | None:
    """The section, or None when the search evaluated no extra split."""
    splits = list(search.spec.base.data.eval_splits)
    if not splits:
        return None
    title = "In- vs out-of-distribution accuracy"
    trials = _measured(search, splits)
    if not trials:
        return Section(title, ["No completed trial has reported its evaluation splits yet."])
    header = ["trial", "val top-1 (%)"]
    header += [f"{s} top-1 (%)" for s in splits] + [f"{s} gap (pts)" for s in splits]
    rows = [_row(t, splits) for t in trials[:TOP_ROWS]]
    note = (
        f"Validation top-1 against top-1 on each extra evaluation split "
        f"({', '.join(splits)}) after each trial's last epoch, best validation top-1 first; "
        "the gap is validation minus split accuracy."
    )
    path = _figure(trials, splits, out_dir / "ood_accuracy.png")
    return Section(title, [note], Table(header, rows), [path])


def _measured(search: SearchRecord, splits: list[str]) -> list[TrialRecord]:
    names = [IN_DISTRIBUTION, *(at_split(s, IN_DISTRIBUTION) for s in splits)]
    done = [
        t
        for t in search.in_state("COMPLETE")
        if all(isinstance(t.metrics.get(n), int | float) for n in names)
    ]
    return sorted(done, key=lambda t: -t.metrics[IN_DISTRIBUTION])


def _row(trial: TrialRecord, splits: list[str]) -> list[str]:
    val = trial.metrics[IN_DISTRIBUTION]
    ood = [trial.metrics[at_split(s, IN_DISTRIBUTION)] for s in splits]
    return [f"#{trial.number}", f"{val:.1f}", *(f"{v:.1f}" for v in ood)] + [
        f"{val - v:+.1f}" for v in ood
    ]


def _figure(trials: list[TrialRecord], splits: list[str], path: Path) -> Path:
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    xs = [trial.metrics[IN_DISTRIBUTION] for trial in trials]
    values = list(xs)
    for split in splits:
        name = at_split(split, IN_DISTRIBUTION)
        ys = [t.metrics[name] for t in trials]
        ax.scatter(xs, ys, label=split)
        values += ys
        points = zip(trials, ys, strict=True)
        _label_points(ax, [(t.metrics[IN_DISTRIBUTION], y, t.number) for t, y in points])
    low, high = min(values), max(values)
    ax.plot([low, high], [low, high], color="tab:gray", linestyle="--", label="y = x")
    ax.set_title("In- vs out-of-distribution accuracy (one point per trial)")
    ax.set_xlabel("validation top-1 (%)")
    ax.set_ylabel("evaluation split top-1 (%)")
    ax.legend()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path
