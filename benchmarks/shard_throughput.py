"""Images per second read from packed shards against the same images from an image folder.

The bundled digits are written as an image folder (8x8 upscaled to 32 px, as rsearch trains
them, then to 64 px PNGs: 1437 train images, 360 val) and packed with `rsearch data pack`.
Each reader decodes every training image and applies rsearch's streamed training transform
(random-resized crop to 64 px, flip) in loader workers, batch 64, and the batches are taken
in the main process as a training loop would; nothing trains. Readers:

- folder: rsearch's image-folder stream (a DataLoader over the files, `data.num_workers`);
- shards: rsearch's shard stream (`data.dataset: shards`: a DataLoader over tar streams, each
  worker its own shards);
- ray-data: Ray Data's `read_webdataset` on the same shards, the same decode and transform in
  `map_batches` (as many tasks as loader workers), `iter_torch_batches` (Ray started first;
  its start-up is not counted).

Each reader runs `--rounds` epochs at 1 and 2 loader workers; the table shows the best epoch
(the least disturbed by other processes on the machine).

    .venv/bin/python benchmarks/shard_throughput.py
    .venv/bin/python benchmarks/shard_throughput.py --size 64 --rounds 3 --shard-size 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from rsearch.spec.recipe import AugmentConfig
from rsearch.train.augment import pil_train_transform
from rsearch.train.data import FileDataset
from rsearch.train.folders import folder_files
from rsearch.train.shard_data import Readers, ShardStream
from rsearch.train.shards import decode, pack, read_index
from rsearch.train.sources import _digits
from rsearch.train.splits import ImageFiles

BATCH = 64


def write_digits_folder(root: Path, size: int, copies: int = 1) -> Path:
    """The digits split as train/ and val/ class folders of size-px PNGs.

    Args:
        root: The folder to write.
        size: Side of the PNGs in pixels.
        copies: Files written per training image (a larger set to read; val is written once).
    """
    source = _digits(32)
    for split in ("train", "val"):
        part = getattr(source, split)
        scaled = F.interpolate(part.images.float(), size=(size, size), mode="bilinear")
        pixels = scaled.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        times = copies if split == "train" else 1
        for i, (image, label) in enumerate(zip(pixels, part.labels.tolist(), strict=True)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for copy in range(times):
                Image.fromarray(image).save(folder / f"{i:05d}-{copy}.png")
    return root


def _epoch(batches: Iterable[Any]) -> tuple[float, int]:
    start, count = time.perf_counter(), 0
    for batch in batches:
        labels = batch[1] if isinstance(batch, tuple | list) else batch["label"]
        count += len(labels)
    return time.perf_counter() - start, count


def folder_reader(folder: Path, tf: Callable[..., torch.Tensor], workers: int) -> Any:
    """The image-folder stream rsearch uses for data.num_workers > 0."""
    files = folder_files(folder).train
    assert isinstance(files, ImageFiles)
    return DataLoader(FileDataset(files, tf), BATCH, shuffle=True, num_workers=workers)


def shard_reader(root: Path, tf: Callable[..., torch.Tensor], workers: int) -> Any:
    """rsearch's shard stream, each shard read once (the training stream would cycle)."""
    shards = read_index(str(root)).shards["train"]
    stream = ShardStream(str(root), shards, Readers(0, 1, workers), tf, False, 0)
    return DataLoader(stream, BATCH, num_workers=workers)


def ray_reader(root: Path, tf: Callable[..., torch.Tensor], workers: int) -> Any:
    """Ray Data's WebDataset reader with the same decode and transform."""
    import ray.data

    def transform(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = [tf(decode(bytes(data))).numpy() for data in batch["png"]]
        labels = [int(bytes(c)) for c in batch["cls"]]
        return {"image": np.stack(images), "label": np.asarray(labels)}

    class Epochs:  # a Dataset runs once per iteration: one per epoch
        def __iter__(self) -> Any:
            ds = ray.data.read_webdataset(
                sorted(str(p) for p in root.glob("train-*.tar")), decoder=None
            ).map_batches(transform, batch_size=BATCH, concurrency=workers)
            return iter(ds.iter_torch_batches(batch_size=BATCH))

    return Epochs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="side of the PNGs in pixels")
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Data reader")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="shard-throughput-"))
    folder = write_digits_folder(tmp / "folder", args.size)
    root = tmp / "shards"
    index = pack(folder, root, args.shard_size)
    size_mb = sum(s.bytes for s in index.shards["train"]) / 2**20
    tf = pil_train_transform(AugmentConfig(), args.size, "bilinear", (0.5, 0.5, 0.5))
    readers: dict[str, Callable[[int], Any]] = {
        "folder": lambda w: folder_reader(folder, tf, w),
        "shards": lambda w: shard_reader(root, tf, w),
    }
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        readers["ray-data"] = lambda w: ray_reader(root, tf, w)
    table = Table(
        title=f"{index.count('train')} train images, {args.size} px PNG, "
        f"{len(index.shards['train'])} shards ({size_mb:.1f} MiB), batch {BATCH}"
    )
    for column in ("reader", "loader workers", "images/s (best epoch)", "images"):
        table.add_column(column)
    for workers in args.workers:
        for name, make in readers.items():
            batches = make(workers)
            runs = [_epoch(batches) for _ in range(args.rounds)]
            seconds, count = min(runs)
            table.add_row(name, str(workers), f"{count / seconds:.0f}", str(count))
    Console().print(table)


if __name__ == "__main__":
    main()
