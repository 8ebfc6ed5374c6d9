"""Packed shards: pack -> check -> train reads the folder's images and labels, damaged shards
are named, readers split the shards, and a set in an S3 bucket (a local moto server) trains."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from rsearch.spec import Recipe
from rsearch.train import fit
from rsearch.train.augment import pil_eval_transform
from rsearch.train.bundles import build_data
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.folders import folder_files, open_rgb
from rsearch.train.shard_data import Readers, ShardStream, SkippedSample, shuffle_buffer
from rsearch.train.shards import ShardInfo, check, node_copy, pack, read_index
from rsearch.tune.storage import fs_path
from tests.moto_server import moto_bucket
from tests.train.train_helpers import RecipeFactory, write_image_folder

CPU = torch.device("cpu")
EVAL = pil_eval_transform(16, 1.0, "bilinear")


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path]:
    """A 3-class folder (8 train, 4 val images a class) and its shards of 5 images."""
    folder = write_image_folder(tmp_path / "folder", per_class=8)
    return folder, _pack(folder, tmp_path / "shards")


def _pack(folder: Path, out: Path, shard_size: int = 5) -> Path:
    pack(folder, out, shard_size=shard_size)
    return out


def _key(image: torch.Tensor, label: int) -> tuple[int, bytes]:
    return label, image.numpy().tobytes()


def _stream(root: Path, split: str, rank: int = 0, world: int = 1, workers: int = 0) -> Any:
    shards = read_index(str(root)).shards[split]
    stream = ShardStream(str(root), shards, Readers(rank, world, max(1, workers)), EVAL, False, 0)
    return DataLoader(stream, batch_size=None, num_workers=workers)


def _shard_recipe(make_recipe: RecipeFactory, path: str, **data: Any) -> Recipe:
    return make_recipe(data={"dataset": "shards", "path": path, "batch_size": 4, **data})


def test_shards_give_the_folders_images_and_labels(packed: tuple[Path, Path]) -> None:
    folder, root = packed
    assert check(str(root)) == {}
    source = folder_files(folder)
    for split in ("train", "val"):
        part = getattr(source, split)
        expected = Counter(
            _key(EVAL(open_rgb(f)), label) for f, label in zip(part.files, part.labels, strict=True)
        )
        got = Counter(_key(image, int(label)) for image, label in _stream(root, split))
        assert got == expected and len(got) > 0
    index = json.loads((root / "index.json").read_text())
    assert index["classes"] == ["cat", "dog", "fox"]
    assert index["splits"]["train"]["count"] == 24 and len(index["splits"]["train"]["shards"]) == 5


def test_training_on_shards_runs_and_epoch_length_comes_from_the_index(
    make_recipe: RecipeFactory, packed: tuple[Path, Path]
) -> None:
    _, root = packed
    recipe = _shard_recipe(make_recipe, str(root), num_workers=1)
    data = build_data(recipe, DistContext(), CPU, "bilinear", (0.5, 0.5, 0.5))
    assert len(data.train) == 24 // 4 and data.num_classes == 3 and not data.in_memory
    batches = list(data.train)
    assert len(batches) == 6 and batches[0][0].shape == (4, 3, 16, 16)
    metrics = fit(recipe)
    assert 0.0 <= metrics["val_top1"] <= 100.0


def test_the_first_batch_waits_for_a_small_share_of_the_epoch(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    # Every image the shuffle buffer holds is decoded before a reader yields its first one.
    assert (shuffle_buffer(700), shuffle_buffer(100_000), shuffle_buffer(3)) == (87, 512, 1)
    root = _pack(write_image_folder(tmp_path / "folder", per_class=40), tmp_path / "shards", 10)
    recipe = _shard_recipe(make_recipe, str(root))
    data = build_data(recipe, DistContext(), CPU, "bilinear", (0.5, 0.5, 0.5))
    stream = data.train.dataset  # type: ignore[attr-defined]
    decoded = 0
    transform = stream.transform

    def counting(image: Any) -> torch.Tensor:
        nonlocal decoded
        decoded += 1
        return transform(image)

    stream.transform = counting
    batches = iter(data.train)
    next(batches)
    assert stream.buffer == 120 // 8 and decoded == stream.buffer + 4  # buffer, then a batch
    assert sum(len(labels) for _, labels in batches) == 120 - 4 and decoded == 120


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 1-core pin
def test_readers_read_disjoint_shards_covering_all(packed: tuple[Path, Path]) -> None:
    _, root = packed
    shards = [ShardInfo(f"s{i}", 1, "", 0) for i in range(7)]
    mine = [Readers(rank, 2, 1).mine(shards) for rank in (0, 1)]
    assert not set(s.name for s in mine[0]) & set(s.name for s in mine[1])
    assert sorted(s.name for part in mine for s in part) == sorted(s.name for s in shards)
    # Two ranks of two loader workers each: every validation image exactly once.
    seen = Counter()
    for rank in (0, 1):
        seen.update(_key(image, int(label)) for image, label in _stream(root, "val", rank, 2, 2))
    single = Counter(_key(image, int(label)) for image, label in _stream(root, "val"))
    assert seen == single and sum(seen.values()) == 24


def test_fewer_training_shards_than_readers_is_refused(
    make_recipe: RecipeFactory, packed: tuple[Path, Path]
) -> None:
    _, root = packed  # 5 training shards
    recipe = _shard_recipe(make_recipe, str(root), num_workers=3, batch_size=4)
    with pytest.raises(TrainInputError, match="fewer than the 6 readers"):
        build_data(recipe, DistContext(rank=0, world_size=2), CPU, "bilinear", (0.5,) * 3)


def _flip(shard: Path, offset: int) -> None:
    data = bytearray(shard.read_bytes())
    for i in range(offset, offset + 64):
        data[i] ^= 0xFF
    shard.write_bytes(bytes(data))


def test_a_corrupted_shard_is_named_by_check_and_skipped_in_training(
    make_recipe: RecipeFactory, packed: tuple[Path, Path]
) -> None:
    _, root = packed
    _flip(root / "train-000002.tar", 600)  # inside the first sample's PNG bytes
    problems = check(str(root))
    assert list(problems) == ["train-000002.tar"]
    assert "sha256 differs" in " ".join(problems["train-000002.tar"])
    with pytest.warns(SkippedSample, match=r"sample \d+ of shard train-000002\.tar"):
        images = [image for image, _ in _stream(root, "train")]
    assert len(images) == 23
    recipe = _shard_recipe(make_recipe, str(root))
    with pytest.warns(SkippedSample, match="train-000002.tar"):
        fit(recipe)


def test_a_damaged_tar_header_skips_the_rest_of_its_shard(packed: tuple[Path, Path]) -> None:
    _, root = packed
    _flip(root / "val-000001.tar", 0)  # the first member's header
    assert "val-000001.tar" in check(str(root))
    with pytest.warns(SkippedSample, match="rest of shard val-000001.tar"):
        labels = [label for _, label in _stream(root, "val")]
    assert len(labels) == 24 - 5


def test_pack_skips_a_broken_image_naming_it(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "folder")
    broken = folder / "train" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    told: list[str] = []
    index = pack(folder, tmp_path / "out", warn=told.append)
    assert index.skipped == [str(broken)] and str(broken) in told[0]
    assert index.count("train") == 12


def test_pack_is_atomic_and_refuses_an_existing_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_image_folder(tmp_path / "folder")
    out = tmp_path / "out"
    pack(folder, out)
    with pytest.raises(TrainInputError, match="exists"):
        pack(folder, out)
    before = (out / "index.json").read_text()

    def fail(*_: Any) -> list[ShardInfo]:
        raise KeyboardInterrupt

    monkeypatch.setattr("rsearch.train.shards._write_split", fail)
    with pytest.raises(KeyboardInterrupt):
        pack(folder, out, force=True)
    assert (out / "index.json").read_text() == before  # the old set untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "out"]  # no leftovers


# --- the packed set in an S3 bucket ------------------------------------------------------------


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """An s3:// URI on a fresh bucket of a local moto server, and a filesystem to fill it."""
    yield from moto_bucket(monkeypatch, tmp_path)


def test_shards_in_a_bucket_train_through_one_node_copy(
    make_recipe: RecipeFactory,
    packed: tuple[Path, Path],
    s3_bucket: tuple[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, root = packed
    uri, fs = s3_bucket
    for path in root.iterdir():
        with fs.open_output_stream(f"{fs_path(uri)}/{path.name}") as out:
            out.write(path.read_bytes())
    assert check(uri) == {}
    node = tmp_path / "node"
    monkeypatch.setattr("rsearch.train.shards.node_dir", lambda: node)
    metrics = fit(_shard_recipe(make_recipe, uri))
    assert 0.0 <= metrics["val_top1"] <= 100.0
    (copy,) = [p for p in (node / "shards").iterdir() if p.is_dir()]
    assert sorted(p.name for p in copy.glob("*.tar")) == sorted(p.name for p in root.glob("*.tar"))
    # A second trial on the node reuses the copy: nothing is read from the bucket again.
    fs.delete_dir_contents(fs_path(uri))
    assert node_copy(uri, read_index(str(copy))) == str(copy)


def test_a_set_packed_again_at_the_same_uri_gets_a_fresh_node_copy(
    packed: tuple[Path, Path], s3_bucket: tuple[str, Any], tmp_path: Path
) -> None:
    folder, root = packed
    uri, fs = s3_bucket

    def upload(source: Path) -> None:
        for path in source.iterdir():
            with fs.open_output_stream(f"{fs_path(uri)}/{path.name}") as out:
                out.write(path.read_bytes())

    upload(root)
    first = node_copy(uri, read_index(uri), tmp_path / "node")
    upload(_pack(folder, tmp_path / "again", shard_size=4))
    second = node_copy(uri, read_index(uri), tmp_path / "node")
    assert first is not None and second is not None and first != second
    assert len(list(Path(second).glob("train-*.tar"))) == 6
    assert check(second) == {}
