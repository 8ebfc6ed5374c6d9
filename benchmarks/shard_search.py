"""A multi-trial search on shards against the same search on the image folder they came from.

The bundled digits are written as an image folder of 64 px PNGs (as shard_throughput.py does;
`--copies` files per training image for a larger set) and packed with `rsearch data pack`'s
function. The same search (random search with a fixed seed, so every arm trains the same
learning rates; `--trials` trials, 2 at once, 1 Train worker x 1 CPU each, `data.num_workers`
1, no scheduler) then runs through `rsearch.tune.driver.run_search`, as `rsearch run
--no-track` runs it, in one embedded Ray, three ways:

- folder: `data.dataset: image_folder` on the folder (rsearch streams it: one file per image);
- shards: `data.dataset: shards` on the packed set on local disk;
- s3: the same shards uploaded to a bucket of a local S3 server (moto, 127.0.0.1): the first
  trial on the node copies them to the node under a lock, the other trials read that copy.
  The node's copy is deleted before each s3 search, so every s3 search pays its download.

A one-trial, one-epoch search on the folder runs first and is not counted (one-off costs of
the first search in a Ray: the model's inference speed measured into the user's cache, files
read into the page cache). Per search: wall seconds of `run_search`, seconds from its call
to the first trial result (Tune's result timestamps, whole seconds), and trained images per
second (every trial's trained images, summed over the trials, over the search's wall time),
each as a ratio to the folder search of the same round; beside them the training loop's own
rate (the median epoch's `train_images_per_s`). Rounds run the arms in a rotated order, so
that load from other processes falls on different arms.

    PYTHONPATH=. .venv/bin/python benchmarks/shard_search.py
    PYTHONPATH=. .venv/bin/python benchmarks/shard_search.py --rounds 3 --epochs 3 --copies 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from benchmarks.shard_throughput import write_digits_folder
from rsearch.machine import node_dir
from rsearch.spec import parse_spec_text
from rsearch.train.shards import ShardIndex, copy_dir, pack, read_index
from rsearch.tune.driver import run_search
from rsearch.tune.storage import fs_path
from tests.moto_server import moto_bucket

SPEC = """
name: {arm}
objective: {{metric: val_top1, mode: max}}
search: {{algorithm: random, num_trials: {trials}, max_concurrent: 2, seed: 0}}
scheduler: {{type: none}}
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
storage: {storage}
base:
  model: {{name: {model}}}
  data: {{dataset: {dataset}, path: '{path}', image_size: {size}, batch_size: {batch},
          num_workers: 1}}
  epochs: {epochs}
space:
  optim.lr: {{type: float, low: 0.002, high: 0.3, log: true}}
"""

ARMS = ("folder", "shards", "s3")


@dataclass(frozen=True)
class Search:
    """What one search measured."""

    arm: str
    wall_s: float
    first_result_s: float
    images: int
    loop_images_per_s: float
    """Median over epochs of the training loop's own rate (`train_images_per_s`)."""

    @property
    def images_per_s(self) -> float:
        """Trained images of all trials over the search's wall time."""
        return self.images / self.wall_s


@dataclass(frozen=True)
class Setup:
    """The data of the three arms and the search's settings."""

    folder: Path
    shards: Path
    uri: str
    index: ShardIndex
    args: argparse.Namespace

    def source(self, arm: str) -> tuple[str, str]:
        """The arm's data.dataset and data.path."""
        if arm == "folder":
            return "image_folder", str(self.folder)
        return "shards", str(self.shards) if arm == "shards" else self.uri

    def epoch_images(self) -> int:
        """Images trained per epoch: whole batches only, on both readers."""
        batch = self.args.batch
        return self.index.count("train") // batch * batch


def drop_node_copy(uri: str, index: ShardIndex) -> None:
    """Delete this node's copy of the bucket's shards, so the next search downloads them."""
    target = copy_dir(uri, index, node_dir() / "shards")
    shutil.rmtree(target, ignore_errors=True)
    target.with_name(f"{target.name}.lock").unlink(missing_ok=True)


def result_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every result every trial reported (Tune's result.json lines)."""
    rows = []
    for path in run_dir.rglob("result.json"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def run_arm(setup: Setup, arm: str, root: Path) -> Search:
    """Run the search on one arm's data under root and measure it."""
    args = setup.args
    dataset, path = setup.source(arm)
    text = SPEC.format(
        arm=arm,
        trials=args.trials,
        storage=root / "runs",
        model=args.model,
        dataset=dataset,
        path=path,
        size=args.size,
        batch=args.batch,
        epochs=args.epochs,
    )
    if arm == "s3":
        drop_node_copy(setup.uri, setup.index)
    called, start = time.time(), time.perf_counter()
    info = run_search(parse_spec_text(text), live=False, track=False)
    wall = time.perf_counter() - start
    assert not info.errors, info.errors
    rows = [r for r in result_rows(info.run_dir) if "train_images_per_s" in r]
    assert len(rows) == args.trials * args.epochs, f"{len(rows)} epochs reported"
    first = min(float(r["timestamp"]) for r in rows) - called
    loop = statistics.median(float(r["train_images_per_s"]) for r in rows)
    return Search(arm, wall, first, len(rows) * setup.epoch_images(), loop)


def upload(shards: Path, uri: str, fs: Any) -> None:
    """Copy a packed set into the bucket."""
    for path in sorted(shards.iterdir()):
        with fs.open_output_stream(f"{fs_path(uri)}/{path.name}") as out:
            out.write(path.read_bytes())


@contextlib.contextmanager
def bucket(tmp: Path) -> Iterator[tuple[str, Any]]:
    """A local moto S3 server and bucket; its credentials in this process's environment."""
    with pytest.MonkeyPatch.context() as env:
        with contextlib.contextmanager(moto_bucket)(env, tmp) as (uri, fs):
            yield uri, fs


def ratio_rows(searches: list[Search]) -> list[list[str]]:
    """Table rows: each arm's medians over rounds and its median ratios to the folder."""
    folder = [s for s in searches if s.arm == "folder"]
    rows = []
    for arm in ARMS:
        mine = [s for s in searches if s.arm == arm]
        ratios: dict[str, Callable[[Search], float]] = {
            "wall": lambda s: s.wall_s,
            "first": lambda s: s.first_result_s,
            "rate": lambda s: s.images_per_s,
        }
        r = {
            k: statistics.median(f(s) / f(b) for s, b in zip(mine, folder, strict=True))
            for k, f in ratios.items()
        }
        rows.append(
            [
                arm,
                f"{statistics.median(s.wall_s for s in mine):.1f} s",
                f"{r['wall']:.2f}",
                f"{statistics.median(s.first_result_s for s in mine):.0f} s",
                f"{r['first']:.2f}",
                f"{statistics.median(s.images_per_s for s in mine):.0f}",
                f"{r['rate']:.2f}",
            ]
        )
    return rows


def print_results(setup: Setup, searches: list[Search], load: tuple[float, float]) -> None:
    """Every search, then the medians and ratios."""
    args = setup.args
    console = Console()
    for s in searches:
        console.print(
            f"  {s.arm:6s}: wall {s.wall_s:6.1f} s, first result {s.first_result_s:4.0f} s, "
            f"{s.images} images trained, {s.images_per_s:6.1f} images/s "
            f"(training loop {s.loop_images_per_s:5.0f} images/s)"
        )
    table = Table(
        title=f"{args.trials} trials x {args.epochs} epochs of {args.model} at {args.size} px, "
        f"2 at once, {setup.index.count('train')} train images, "
        f"{len(setup.index.shards['train'])} shards; median of {args.rounds} rounds; "
        f"load {load[0]:.1f} -> {load[1]:.1f}"
    )
    columns = ("data", "wall", "/ folder", "first result", "/ folder", "images/s", "/ folder")
    for column in columns:
        table.add_column(column)
    for row in ratio_rows(searches):
        table.add_row(*row)
    console.print(table)


def run_rounds(setup: Setup, tmp: Path) -> list[Search]:
    """A warm-up search, then every arm once per round in a rotated order."""
    # Not counted: the first search in a Ray pays one-off costs (the model's inference speed
    # measured into the user's cache, files read into the page cache).
    warm = argparse.Namespace(**{**vars(setup.args), "trials": 1, "epochs": 1})
    run_arm(dataclasses.replace(setup, args=warm), "folder", tmp / "warm-up")
    searches = []
    for r in range(setup.args.rounds):
        for arm in ARMS[r % 3 :] + ARMS[: r % 3]:
            searches.append(run_arm(setup, arm, tmp / f"round{r}-{arm}"))
            print(f"round {r} {arm}: {searches[-1]}", flush=True)
    return searches


def main() -> None:
    """Prepare the three arms' data, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="test_resnet", help="a timm model name")
    parser.add_argument("--size", type=int, default=64, help="side of the PNGs in pixels")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--copies", type=int, default=1, help="files per training image")
    parser.add_argument("--shard-size", type=int, default=100)
    args = parser.parse_args()
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="shard-search-"))
    folder = write_digits_folder(tmp / "folder", args.size, args.copies)
    index = pack(folder, tmp / "shards", args.shard_size)
    with bucket(tmp) as (uri, fs):
        upload(tmp / "shards", uri, fs)
        setup = Setup(folder, tmp / "shards", uri, read_index(uri), args)
        # Started after the bucket: its workers inherit the S3 credentials.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            load_start = os.getloadavg()[0]
            searches = run_rounds(setup, tmp)
        finally:
            ray.shutdown()
            drop_node_copy(uri, index)
            shutil.rmtree(tmp, ignore_errors=True)
    print_results(setup, searches, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
