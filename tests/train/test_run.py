"""run_recipe (what `rsearch train` calls) and clear errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rsearch.errors import UserError
from rsearch.train import TrainInputError, fit, run_recipe
from tests.train.train_helpers import RecipeFactory, write_image_folder


def test_run_recipe_writes_history_and_final(
    make_recipe: RecipeFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = make_recipe(epochs=2)
    path = tmp_path / "out" / "metrics.json"
    final = run_recipe(recipe, path, progress=True)
    document = json.loads(path.read_text())
    assert document["final"] == final
    assert [m["epoch"] for m in document["history"]] == [1, 2]
    assert document["history"][-1] == final
    assert document["recipe"]["model"]["name"] == "test_resnet"
    captured = capsys.readouterr()
    assert "final metrics" in captured.out and "val_top1" in captured.out
    assert "epoch 2/2" in captured.err  # the per-epoch line above the progress bars


def test_run_recipe_without_progress_or_file(
    make_recipe: RecipeFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    final = run_recipe(make_recipe(), None, progress=False)
    captured = capsys.readouterr()
    assert "epoch 1/1" not in captured.err
    assert "final metrics" in captured.out
    assert final["epoch"] == 1


def test_train_input_error_is_a_user_error() -> None:
    assert issubclass(TrainInputError, UserError)  # the CLI shows it and exits with 2


def test_missing_dataset_path(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    recipe = make_recipe(data={"dataset": "image_folder", "path": str(tmp_path / "missing")})
    with pytest.raises(TrainInputError, match=r"data.path '.*missing' does not exist"):
        run_recipe(recipe, None, progress=False)


def test_unreadable_image(make_recipe: RecipeFactory, image_folder: Path) -> None:
    (image_folder / "val" / "fox" / "bad.jpg").write_bytes(b"\x00" * 100)
    recipe = make_recipe(data={"dataset": "image_folder", "path": str(image_folder)})
    with pytest.raises(TrainInputError, match=r"cannot read image '.*fox/bad\.jpg'"):
        fit(recipe)


def test_class_folders_differ(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", {"train": ["a", "b"], "val": ["a", "c"]})
    recipe = make_recipe(data={"dataset": "image_folder", "path": str(root)})
    with pytest.raises(TrainInputError, match="class folders differ between"):
        fit(recipe)


def test_model_timm_lacks(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe()
    bad = recipe.model_copy(update={"model": recipe.model.model_copy(update={"name": "resnet5O"})})
    with pytest.raises(TrainInputError, match=r"timm has no model 'resnet5O' \(did you mean"):
        fit(bad)


def test_bad_thread_count(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="threads must be a positive integer, got 0"):
        fit(make_recipe(), threads=0)


def test_threads_size_torch_pool(make_recipe: RecipeFactory) -> None:
    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 2
    try:
        fit(make_recipe(), threads=wanted)
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)


def test_threads_default_to_the_cpus_held(
    make_recipe: RecipeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `rsearch train` does: no count given, so the process's CPUs, split among the
    # ranks started together on the node.
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(6)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    before = torch.get_num_threads()
    try:
        fit(make_recipe())
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_image_folder_trains(make_recipe: RecipeFactory, image_folder: Path) -> None:
    recipe = make_recipe(
        data={"dataset": "image_folder", "path": str(image_folder), "batch_size": 4},
        augment={"randaugment_layers": 2},
        epochs=2,
    )
    final = fit(recipe)
    assert final["epoch"] == 2 and final["val_top5"] == 100.0  # 3 classes: top-5 is all


def test_imports_neither_ray_nor_mlflow() -> None:
    # The training core must run on a laptop without the cluster and tracking stacks.
    code = (
        "import sys, rsearch.train, rsearch.train.loop, rsearch.train.run; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'mlflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
