"""Image folders packed into shards (WebDataset tar files) with an index, and checked.

A packed set is a directory (local, or an `s3://` / `gs://` URI that pyarrow opens, credentials
from the environment) holding `{split}-%06d.tar` shards and `index.json`. Each sample of a
shard is two tar members sharing a key, WebDataset's layout: `KEY.<ext>` (the image file's
bytes as they were, never re-encoded, so a shard decodes to exactly the folder's pixels) and
`KEY.cls` (the class index as text). The index names the classes, counts each split's images
and records every shard's image count and sha256.

Packing is atomic: shards are written into a temporary sibling directory renamed into place at
the end, so a failure or Ctrl-C leaves no half-written set. Images that cannot be decoded are
skipped, each reported with its path (and listed in the index under `skipped`).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
from PIL import Image

from rsearch.machine import node_dir
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import folder_files, open_rgb
from rsearch.train.splits import SPLIT_SEED

INDEX = "index.json"
FORMAT = "rsearch-shards/1"
SPLITS = ("train", "val")
DEFAULT_SHARD_SIZE = 1000
"""Images per shard: large enough for sequential reads, small enough to split across readers."""


@dataclass(frozen=True)
class ShardInfo:
    """One shard of a split as the index records it."""

    name: str
    count: int
    sha256: str
    bytes: int


@dataclass
class ShardIndex:
    """A packed set's index.json."""

    classes: list[str]
    shards: dict[str, list[ShardInfo]]
    skipped: list[str] = field(default_factory=list)

    def count(self, split: str) -> int:
        """Images of a split."""
        return sum(s.count for s in self.shards[split])

    def to_json(self) -> dict[str, Any]:
        """The index as written to index.json."""
        return {
            "format": FORMAT,
            "classes": self.classes,
            "splits": {
                split: {"count": self.count(split), "shards": [vars(s) for s in shards]}
                for split, shards in self.shards.items()
            },
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> ShardIndex:
        """Read an index, naming where it came from when it is not one.

        Raises:
            TrainInputError: not an rsearch shard index.
        """
        try:
            if data["format"] != FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {FORMAT!r}")
            shards = {
                split: [ShardInfo(**s) for s in data["splits"][split]["shards"]] for split in SPLITS
            }
            return cls(list(data["classes"]), shards, list(data.get("skipped", [])))
        except (KeyError, TypeError, ValueError) as e:
            raise TrainInputError(f"{where} is not an rsearch shard index: {e}") from e


# --- where a packed set lives ---------------------------------------------------------------------


def is_remote(path: str) -> bool:
    """Whether a data.path names object storage rather than a local directory."""
    scheme = urllib.parse.urlparse(path).scheme
    return len(scheme) > 1 and scheme not in ("file", "local")


def _fs(uri: str) -> tuple[Any, str]:
    from pyarrow.fs import FileSystem  # type: ignore[import-untyped]

    try:
        return FileSystem.from_uri(uri)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for a bad URI
        raise TrainInputError(f"cannot open data.path {uri!r}: {e}") from e


def _join(uri: str, name: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.urlunparse(parsed._replace(path=f"{parsed.path.rstrip('/')}/{name}"))


def open_file(root: str, name: str) -> IO[bytes]:
    """A binary stream of a file of a packed set (local or object storage).

    Raises:
        TrainInputError: the file cannot be opened, naming it.
    """
    try:
        if not is_remote(root):
            return (Path(root).expanduser() / name).open("rb")
        fs, path = _fs(_join(root, name))
        return fs.open_input_stream(path)
    except OSError as e:
        raise TrainInputError(f"cannot read {name!r} of the shards at {root!r}: {e}") from e


def read_index(root: str) -> ShardIndex:
    """The index of a packed set.

    Raises:
        TrainInputError: no readable index there.
    """
    with open_file(root, INDEX) as f:
        raw = f.read()
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise TrainInputError(f"{root}/{INDEX} is not JSON: {e}") from e
    return ShardIndex.from_json(data, f"{root}/{INDEX}")


# --- packing ---------------------------------------------------------------------------------


def _readable(path: Path) -> bool:
    try:
        open_rgb(path)
    except TrainInputError:
        return False
    return True


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    # Fixed metadata: the same folder packs to the same bytes (and checksums).
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_split(
    out: Path, split: str, files: list[Path], labels: list[int], shard_size: int
) -> list[ShardInfo]:
    shards = []
    for number, start in enumerate(range(0, len(files), shard_size)):
        name = f"{split}-{number:06d}.tar"
        with tarfile.open(out / name, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key in range(start, min(start + shard_size, len(files))):
                path = files[key]
                _add(tar, f"{key:08d}{path.suffix.lower()}", path.read_bytes())
                _add(tar, f"{key:08d}.cls", str(labels[key]).encode())
        data = (out / name).read_bytes()
        count = min(shard_size, len(files) - start)
        shards.append(ShardInfo(name, count, hashlib.sha256(data).hexdigest(), len(data)))
    return shards


def pack(
    folder: Path,
    out: Path,
    shard_size: int = DEFAULT_SHARD_SIZE,
    force: bool = False,
    warn: Callable[[str], None] = lambda _: None,
) -> ShardIndex:
    """Pack an image folder's train/ and val/ splits into shards and an index at out.

    The training images are written in one seeded random order (so every shard holds every
    class in proportion and a stream read shard by shard is already mixed); validation images
    keep the folder's order.

    Args:
        folder: an image folder (train/ and val/ class folders).
        out: the directory to create.
        shard_size: images per shard.
        force: replace an existing out.
        warn: told each skipped image's path.

    Raises:
        TrainInputError: a bad folder, an existing out without force, a split left empty.
    """
    if shard_size < 1:
        raise TrainInputError(f"--shard-size must be at least 1, not {shard_size}")
    if out.exists() and not force:
        raise TrainInputError(f"{out} exists; choose another directory or pass --force")
    source = folder_files(folder)
    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    classes = [c for c in classes if not c.startswith(".")]
    tmp = out.with_name(f".{out.name}.packing-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        index = ShardIndex(classes, {})
        for split in SPLITS:
            part = getattr(source, split)
            order = np.arange(len(part))
            if split == "train":
                order = np.random.default_rng(SPLIT_SEED).permutation(order)
            files, labels = [], []
            for i in order:
                if _readable(part.files[i]):
                    files.append(part.files[i])
                    labels.append(part.labels[i])
                else:
                    index.skipped.append(str(part.files[i]))
                    warn(f"skipped unreadable image {part.files[i]}")
            if not files:
                raise TrainInputError(f"{folder}/{split} holds no readable images")
            index.shards[split] = _write_split(tmp, split, files, labels, shard_size)
        (tmp / INDEX).write_text(json.dumps(index.to_json(), indent=1) + "\n")
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return index


def _replace(tmp: Path, out: Path) -> None:
    # The old set is moved aside before the new one is renamed in, and removed only then.
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


# --- reading and checking shards ----------------------------------------------------------------


@dataclass
class Sample:
    """One sample of a shard, undecoded."""

    key: str
    image: bytes
    label: int


def iter_samples(stream: IO[bytes]) -> Iterator[Sample]:
    """The samples of a shard read as a stream, in order.

    Raises:
        tarfile.TarError, OSError, ValueError: a damaged shard (a sample missing its image or
            label, a label that is not a number).
    """
    pending: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20) as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = PurePosixPath(member.name).name.partition(".")
            handle = tar.extractfile(member)
            assert handle is not None
            parts = pending.setdefault(key, {})
            parts[ext] = handle.read()
            if "cls" in parts and len(parts) == 2:
                del pending[key]
                label = parts.pop("cls")
                yield Sample(key, next(iter(parts.values())), int(label))
    if pending:
        raise ValueError(f"samples without an image or a label: {sorted(pending)[:5]}")


def decode(image: bytes) -> Image.Image:
    """A sample's image bytes as an RGB PIL image (raises on damaged bytes)."""
    with Image.open(io.BytesIO(image)) as img:
        return img.convert("RGB")


class _Hashing(io.RawIOBase):
    """A read stream that hashes and counts what passes through it."""

    def __init__(self, inner: IO[bytes]):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def check_shard(root: str, shard: ShardInfo, classes: int) -> list[str]:
    """What is wrong with one shard (empty when nothing): checksum, count, decoding, labels."""
    problems = []
    count = 0
    try:
        with open_file(root, shard.name) as raw:
            hashing = _Hashing(raw)
            for sample in iter_samples(io.BufferedReader(hashing)):
                count += 1
                try:
                    decode(sample.image)
                except Exception as e:  # PIL raises many kinds for damaged bytes
                    problems.append(f"sample {sample.key} does not decode ({e})")
                if not 0 <= sample.label < classes:
                    problems.append(f"sample {sample.key} has label {sample.label}")
            while hashing.read(1 << 16):  # tar's end padding, outside any member
                pass
    except (tarfile.TarError, OSError, ValueError, TrainInputError) as e:
        return [*problems, f"unreadable ({e})"]
    if hashing.sha.hexdigest() != shard.sha256:
        problems.append("sha256 differs from the index")
    if count != shard.count:
        problems.append(f"{count} samples, the index says {shard.count}")
    return problems


def check(root: str) -> dict[str, list[str]]:
    """Verify every shard of a packed set against its index: problems by shard name."""
    index = read_index(root)
    found = {}
    for split in SPLITS:
        for shard in index.shards[split]:
            problems = check_shard(root, shard, len(index.classes))
            if problems:
                found[shard.name] = problems
    return found


# --- the node-local copy of remote shards ---------------------------------------------------------


def copy_dir(root: str, index: ShardIndex, parent: Path) -> Path:
    """The directory in parent of a remote set's node-local copy.

    Named by a hash of the URI and of the index, so a set packed again at the same URI (new
    checksums) gets a fresh copy rather than the stale one.
    """
    key = json.dumps([root, index.to_json()], sort_keys=True).encode()
    return parent / hashlib.sha256(key).hexdigest()[:16]


def node_copy(root: str, index: ShardIndex, directory: Path | None = None) -> str | None:
    """A node-local copy of a remote packed set, made once per node and shared by its trials.

    The first trial on a node downloads the shards under a lock (the others wait, then find
    the copy); a copy is complete only once its marker is written, so an interrupted download
    is redone. When the node's disk cannot hold the set (free space below its size plus a
    margin) nothing is copied and None is returned: every reader then streams from the store.

    Args:
        root: the packed set's URI.
        index: its index (the shards' names, sizes and checksums).
        directory: the node-local parent (default: node_dir()/shards).
    """
    parent = directory or node_dir() / "shards"
    parent.mkdir(parents=True, exist_ok=True)
    target = copy_dir(root, index, parent)
    done = target / ".complete"
    with target.with_name(f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return str(target)
        shards = [s for split in SPLITS for s in index.shards[split]]
        needed = sum(s.bytes for s in shards)
        if shutil.disk_usage(parent).free < needed * 1.1 + 2**30:
            return None
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for shard in shards:
            with open_file(root, shard.name) as src, (target / shard.name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        (target / INDEX).write_text(json.dumps(index.to_json()))
        done.touch()
    return str(target)
