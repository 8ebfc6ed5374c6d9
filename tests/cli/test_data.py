"""`rsearch data pack` and `rsearch data check` as the user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rsearch.cli import app
from tests.train.train_helpers import write_image_folder

runner = CliRunner()


def test_pack_then_check(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "folder")
    out = tmp_path / "shards"
    result = runner.invoke(app, ["data", "pack", str(folder), str(out), "--shard-size", "5"])
    assert result.exit_code == 0, result.output
    assert "train: 12 images in 3 shards" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "index.json",
        *(f"train-{i:06d}.tar" for i in range(3)),
        *(f"val-{i:06d}.tar" for i in range(3)),
    ]
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 0 and "every shard matches" in result.stdout
    again = runner.invoke(app, ["data", "pack", str(folder), str(out)])
    assert again.exit_code == 2 and "exists" in again.stderr and "--force" in again.stderr
    assert runner.invoke(app, ["data", "pack", str(folder), str(out), "--force"]).exit_code == 0


def test_pack_names_a_broken_image(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "folder")
    broken = folder / "val" / "fox" / "truncated.png"
    broken.write_bytes((folder / "val" / "fox" / "0.png").read_bytes()[:40])
    result = runner.invoke(app, ["data", "pack", str(folder), str(tmp_path / "out")])
    assert result.exit_code == 0
    assert str(broken) in result.stderr and "1 unreadable images skipped" in result.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["skipped"] == [str(broken)] and index["splits"]["val"]["count"] == 12


def test_check_names_a_corrupted_shard_and_exits_2(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "folder")
    out = tmp_path / "shards"
    assert (
        runner.invoke(app, ["data", "pack", str(folder), str(out), "--shard-size", "4"]).exit_code
        == 0
    )
    shard = out / "val-000001.tar"
    data = bytearray(shard.read_bytes())
    data[700:740] = bytes(b ^ 0xFF for b in data[700:740])
    shard.write_bytes(bytes(data))
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: val-000001.tar:") and "sha256" in result.stderr
    assert "train-" not in result.stderr and "Traceback" not in result.output


def test_check_of_a_directory_without_an_index(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 2 and "index.json" in result.stderr
