"""`rsearch train`: a recipe file trains in-process; bad input is a message and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rsearch.cli import app

runner = CliRunner()

TINY = """\
model: {name: test_resnet}
data: {dataset: digits, image_size: 16, batch_size: 64, fraction: 0.3}
augment: {random_resized_crop: false, hflip: 0.0}
epochs: 1
"""


def test_train_writes_metrics(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(TINY)
    metrics = tmp_path / "m.json"
    res = runner.invoke(
        app, ["train", str(recipe), "--no-progress", "--metrics", str(metrics), "--set", "seed=3"]
    )
    assert res.exit_code == 0, res.output
    written = json.loads(metrics.read_text())
    assert "val_top1" in json.dumps(written)


def test_train_bad_inputs_exit_2(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    cases = {
        "missing path": (
            TINY.replace("dataset: digits", f"dataset: image_folder, path: {tmp_path / 'none'}"),
            "does not exist",
        ),
        "unknown model": (TINY.replace("test_resnet", "resnet181"), "did you mean 'resnet18'"),
        "bad field": (TINY + "epochz: 3\n", "did you mean 'epochs'"),
    }
    for name, (text, fragment) in cases.items():
        recipe.write_text(text)
        res = runner.invoke(app, ["train", str(recipe), "--no-progress"])
        assert res.exit_code == 2, (name, res.output)
        assert fragment in res.stderr, (name, res.stderr)
        assert "Traceback" not in res.output + res.stderr
