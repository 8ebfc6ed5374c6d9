"""The `rsearch data` verbs: pack an image folder into shards, check a packed set."""

from __future__ import annotations

from pathlib import Path

import typer

from rsearch.cli.common import err, out, user_errors
from rsearch.errors import UserError

app = typer.Typer(
    name="data",
    help="Pack image folders into shards (WebDataset tar files) and check them.",
    no_args_is_help=True,
)


@app.command()
@user_errors
def pack(
    folder: Path = typer.Argument(..., metavar="IMAGE_FOLDER", help="train/ and val/ folders."),
    dest: Path = typer.Argument(..., metavar="OUT", help="Directory to create."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Images per shard."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUT."),
) -> None:
    """Write OUT/{train,val}-NNNNNN.tar and OUT/index.json; unreadable images are skipped."""
    from rsearch.train.shards import pack as pack_folder

    index = pack_folder(folder, dest, shard_size, force, warn=lambda m: err.print(m))
    for split, shards in index.shards.items():
        out.print(f"{split}: {index.count(split)} images in {len(shards)} shards")
    if index.skipped:
        err.print(f"{len(index.skipped)} unreadable images skipped (listed in index.json)")


@app.command()
@user_errors
def check(
    root: str = typer.Argument(..., metavar="OUT", help="A packed set: directory or URI."),
) -> None:
    """Verify every shard against the index: checksum, count, every image decodes."""
    from rsearch.train.shards import check as check_set

    problems = check_set(root)
    if problems:
        raise UserError(
            "; ".join(f"{name}: {', '.join(found)}" for name, found in problems.items())
        )
    out.print(f"{root}: every shard matches its index")
