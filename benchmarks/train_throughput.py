"""Training throughput of rsearch.train.fit against a minimal plain PyTorch loop.

Both train the same timm model on the same in-memory random uint8 images with the same batch
and optimizer (timm's SGD, lr 0.05), in this one process, alternating epoch by epoch (the
plain loop runs inside fit's report callback) so that a change in machine load hits both.
fit runs with its default augmentation (random-resized crop and flip, batch-wise on the
device); the plain loop only gathers, normalises and trains. The table shows the best round
of each (the least disturbed by other processes) and the median of the per-round ratios.

    .venv/bin/python benchmarks/train_throughput.py                 # quick subset, a few minutes
    .venv/bin/python benchmarks/train_throughput.py --all           # resnet18/50 x 32/64/128 px
    .venv/bin/python benchmarks/train_throughput.py --models resnet50 --sizes 64 --modes bf16

fit's number is its own `train_images_per_s` metric of each epoch after the first (its
warmup); the plain loop's is timed over as many steps, after its own warmup steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from timm.optim import create_optimizer_v2

import rsearch.train.measure
from rsearch.spec import Recipe
from rsearch.train import fit
from rsearch.train.runtime import autocast, configure_threads

MODES = ("fp32", "bf16", "channels_last")
QUICK = [
    ("resnet18", 32, "fp32"),
    ("resnet18", 32, "channels_last"),
    ("resnet18", 32, "bf16"),
    ("resnet18", 64, "fp32"),
    ("resnet50", 32, "fp32"),
]
"""The default subset: a few minutes on 2 CPU cores."""

CLASSES = 10
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    model: str
    size: int
    mode: str
    batch: int
    steps: int
    warmup: int

    @property
    def dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.mode == "bf16" else None

    @property
    def channels_last(self) -> bool:
        return self.mode == "channels_last"


def _images(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    count = case.batch * case.steps
    images = torch.randint(
        0, 256, (count, 3, case.size, case.size), dtype=torch.uint8, generator=gen
    )
    return images, torch.randint(0, CLASSES, (count,), generator=gen)


def _batches(
    case: Case, images: torch.Tensor, labels: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    layout = torch.channels_last if case.channels_last else torch.contiguous_format
    while True:
        order = torch.randperm(len(labels), generator=gen)
        for start in range(0, len(order) - case.batch + 1, case.batch):
            index = order[start : start + case.batch]
            x = (images.index_select(0, index).float() - mean) / std
            yield x.contiguous(memory_format=layout), labels.index_select(0, index)


class PlainLoop:
    """The textbook loop: gather, normalise, forward, backward, step. Nothing else."""

    def __init__(self, case: Case):
        torch.manual_seed(0)
        self.case = case
        model = timm.create_model(case.model, pretrained=False, num_classes=CLASSES).train()
        if case.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = create_optimizer_v2(
            model, opt="sgd", lr=0.05, weight_decay=5e-5, momentum=0.9
        )
        self.batches = _batches(case, *_images(case))
        self.steps(case.warmup)

    def steps(self, count: int) -> None:
        """Train count steps."""
        for _ in range(count):
            x, y = next(self.batches)
            with autocast(CPU, self.case.dtype):
                loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def images_per_s(self) -> float:
        """Images/s over case.steps steps."""
        start = time.perf_counter()
        self.steps(self.case.steps)
        return self.case.batch * self.case.steps / (time.perf_counter() - start)


def _recipe(case: Case, epochs: int) -> Recipe:
    return Recipe.model_validate(
        {
            "model": {"name": case.model},
            "data": {
                "dataset": "synthetic",
                "image_size": case.size,
                "num_classes": CLASSES,
                "synthetic_size": case.batch * case.steps,
                "batch_size": case.batch,
            },
            "optim": {"name": "sgd", "lr": 0.05},
            "precision": "bf16" if case.mode == "bf16" else "fp32",
            "channels_last": case.channels_last,
            "epochs": epochs,
        }
    )


def run(case: Case, rounds: int) -> tuple[list[float], list[float]]:
    """Images/s of (plain loop, fit) per round; a round is one fit epoch then one plain burst.

    The plain loop runs inside fit's report callback, so the two alternate epoch by epoch in
    one process and a change of machine load hits both. fit's first epoch is its warmup.
    """
    plain = PlainLoop(case)
    plain_rates: list[float] = []
    fit_rates: list[float] = []

    def report(metrics: dict[str, float], _checkpoint: str | None) -> None:
        if metrics["epoch"] > 1:
            fit_rates.append(metrics["train_images_per_s"])
            plain_rates.append(plain.images_per_s())

    fit(_recipe(case, rounds + 1), report)
    return plain_rates, fit_rates


def _cases(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    if args.all:
        return [
            (m, s, mode) for m in ("resnet18", "resnet50") for s in (32, 64, 128) for mode in MODES
        ]
    if args.models or args.sizes or args.modes:
        models = args.models.split(",") if args.models else ["resnet18"]
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [32]
        modes = args.modes.split(",") if args.modes else ["fp32"]
        return [(m, s, mode) for m in models for s in sizes for mode in modes]
    return QUICK


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", help="comma-separated timm names (default resnet18)")
    parser.add_argument("--sizes", help="comma-separated image sizes (default 32)")
    parser.add_argument("--modes", help=f"comma-separated of {','.join(MODES)} (default fp32)")
    parser.add_argument("--all", action="store_true", help="resnet18/50 x 32/64/128 x all modes")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (fit: steps per epoch)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of the plain loop")
    parser.add_argument("--rounds", type=int, default=4, help="alternating fit/plain rounds")
    args = parser.parse_args()

    rsearch.train.measure.MEASURE_SECONDS = (
        0.05  # fit's final inference timing is not measured here
    )
    configure_threads(CPU)
    console = Console()
    title = f"training images/s, batch {args.batch}, {torch.get_num_threads()} threads"
    table = Table(title=f"{title}, best of {args.rounds} rounds")
    for column in ("model", "px", "mode", "plain loop", "fit", "fit / plain", "median ratio"):
        table.add_column(column, justify="right")
    for model, size, mode in _cases(args):
        case = Case(model, size, mode, args.batch, args.steps, args.warmup)
        plain, ours = run(case, args.rounds)
        ratios = [f / p for f, p in zip(ours, plain, strict=True)]
        best = (max(plain), max(ours))
        cells = [f"{best[0]:.0f}", f"{best[1]:.0f}", f"{best[1] / best[0]:.3f}"]
        table.add_row(model, str(size), mode, *cells, f"{statistics.median(ratios):.3f}")
        rounds = ", ".join(f"{p:.0f}/{f:.0f}" for p, f in zip(plain, ours, strict=True))
        console.print(f"{model} {size}px {mode}: plain/fit img/s per round {rounds}")
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
