"""run_recipe: what `rsearch train` calls: fit with a progress bar, a summary, a metrics file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rsearch.spec.recipe import Recipe
from rsearch.train.loop import run_training
from rsearch.train.session import Metrics

_EPOCH_LINE = ("train_loss", "val_loss", "val_top1", "val_top5", "lr", "train_images_per_s")
"""Metrics printed after each epoch."""


class ProgressView:
    """A rich progress display with one bar for epochs and one for the current epoch's steps."""

    def __init__(self, epochs: int, console: Console, enabled: bool):
        self.epochs = epochs
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.epoch_task: TaskID | None = None
        self.step_task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=self.epochs)
        self.step_task = self.progress.add_task("steps", total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def step(self, epoch: int, step: int, steps: int) -> None:
        """Advance the step bar (the loop's per-step hook)."""
        assert self.step_task is not None
        if step == 1:
            self.progress.reset(self.step_task, total=steps, description=f"epoch {epoch}")
        self.progress.advance(self.step_task)

    def epoch_done(self, metrics: Metrics) -> None:
        """Advance the epoch bar and print the epoch's main metrics above the bars."""
        assert self.epoch_task is not None
        self.progress.update(self.epoch_task, completed=int(metrics["epoch"]))
        if not self.progress.disable:
            values = "  ".join(f"{k} {_fmt(metrics[k])}" for k in _EPOCH_LINE if k in metrics)
            self.progress.console.print(f"epoch {int(metrics['epoch'])}/{self.epochs}  {values}")


def _fmt(value: float | str) -> str:
    if isinstance(value, str):  # a text metric (device_kind)
        return value
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4g}"


def summary_table(metrics: Metrics) -> Table:
    """A two-column table of the final metrics."""
    table = Table(title="final metrics", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, _fmt(value))
    return table


def write_metrics(path: Path, document: dict[str, Any]) -> None:
    """Write the metrics JSON atomically (a watcher never reads half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _is_main_process() -> bool:
    # Under torchrun every rank runs run_recipe; only rank 0 prints and writes.
    return os.environ.get("RANK", "0") in ("", "0")


def run_recipe(recipe: Recipe, metrics_path: Path | None, progress: bool = True) -> Metrics:
    """Train a recipe in this process, showing progress, and return the final metrics.

    Args:
        recipe: what to train.
        metrics_path: where to write {"recipe", "history" (one dict per epoch), "final"} as
            JSON; None writes nothing.
        progress: show the epoch/step progress bars and per-epoch lines (on stderr).

    Raises:
        TrainInputError: data, model or recipe values that cannot be trained with.
    """
    main = _is_main_process()
    history: list[Metrics] = []
    with ProgressView(recipe.epochs, Console(stderr=True), progress and main) as view:

        def report(metrics: Metrics, _checkpoint: str | None) -> None:
            history.append(metrics)
            view.epoch_done(metrics)

        final = run_training(recipe, report=report, on_step=view.step)
    if main:
        Console().print(summary_table(final))
        if metrics_path is not None:
            document = {
                "recipe": recipe.model_dump(mode="json"),
                "history": history,
                "final": final,
            }
            write_metrics(metrics_path, document)
    return final
