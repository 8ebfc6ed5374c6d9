"""fit: reported metrics, learning, checkpoints and exact resume, precision and layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rsearch.spec import Recipe
from rsearch.train import TrainInputError, fit
from rsearch.train.checkpoint import CHECKPOINT_NAME, load_file
from rsearch.train.model import build_model
from rsearch.train.runtime import cpu_bf16_strided_conv_is_wrong, thin_strided_convs
from tests.train.train_helpers import RecipeFactory

EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "val_loss",
    "val_top1",
    "val_top5",
    "val_auc",
    "val_balanced_acc",
    "val_f1",
    "lr",
    "epoch_s",
    "train_images_per_s",
    "params_m",
    "gflops",
    "model_mbit",
    "gbops",
    "epoch_train_flops",
    "epoch_eval_flops",
    "total_flops",
    "device_s",
    "total_device_s",
    "fidelity",
    "train_image_size",
    "train_fraction",
    "eval_image_size",
    "device_kind",
}
FINAL_KEYS = {
    "infer_images_per_s",
    "infer_latency_ms",
    "infer_latency_ms_batch",
    "infer_spread_pct",
    "infer_latency_spread_pct",
}
TIMES = {"epoch_s", "train_images_per_s", "device_s", "total_device_s", *FINAL_KEYS}


class Recorder:
    """A report callable that keeps what it was given."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple[dict[str, float], str | None]] = []
        self.stop_after = stop_after

    def __call__(self, metrics: dict[str, float], checkpoint: str | None) -> None:
        self.calls.append((metrics, checkpoint))
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt("simulated crash after a checkpoint")


def _without_times(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in TIMES}


def test_reports_every_epoch(make_recipe: RecipeFactory) -> None:
    report = Recorder()
    final = fit(make_recipe(epochs=3), report)
    assert [m["epoch"] for m, _ in report.calls] == [1, 2, 3]
    for metrics, checkpoint in report.calls[:2]:
        assert set(metrics) == EPOCH_KEYS
        assert checkpoint is None
    assert set(final) == EPOCH_KEYS | FINAL_KEYS
    assert final == report.calls[-1][0]
    assert 0 <= final["val_top1"] <= final["val_top5"] <= 100
    assert final["lr"] < report.calls[0][0]["lr"]  # cosine decays
    assert final["params_m"] == pytest.approx(0.3737, abs=1e-3)
    # exact counts over the 12 validation images, not batch averages
    assert (final["val_top1"] * 12 / 100) == pytest.approx(round(final["val_top1"] * 12 / 100))


def test_learns_digits(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(
        model={"name": "resnet18"},
        data={"dataset": "digits", "image_size": 32, "batch_size": 64},
        augment={"random_resized_crop": False, "hflip": 0.0},
        optim={"lr": 0.05},
        epochs=2,
    )
    final = fit(recipe)
    assert final["val_top1"] >= 80.0
    assert final["train_loss"] < 1.0


def test_ema_metrics(make_recipe: RecipeFactory) -> None:
    final = fit(make_recipe(epochs=2, ema={"enabled": True, "decay": 0.9}))
    assert {"ema_val_top1", "ema_val_loss"} <= set(final)
    assert final["ema_val_loss"] != final["val_loss"]


def test_ema_that_follows_the_weights_scores_like_them(make_recipe: RecipeFactory) -> None:
    # A decay of ~0 makes the EMA a copy of the weights after every step: its top-1 and loss
    # must be the raw model's (a mixed-up sum, e.g. top-5 hits as top-1, shows here).
    final = fit(make_recipe(epochs=1, ema={"enabled": True, "decay": 1e-9, "warmup": False}))
    assert final["val_top1"] < final["val_top5"]  # so top-1 and top-5 cannot be confused
    assert final["ema_val_top1"] == pytest.approx(final["val_top1"], abs=0.5)
    assert final["ema_val_loss"] == pytest.approx(final["val_loss"], rel=1e-3)


def _full_recipe(make_recipe: RecipeFactory, **extra: Any) -> Recipe:
    """Every random ingredient on, so an exact resume needs every generator restored."""
    return make_recipe(
        data={"dataset": "digits", "fraction": 0.1, "image_size": 16},
        augment={
            "mixup": 0.2,
            "cutmix": 1.0,
            "random_erasing": 0.25,
            "randaugment_layers": 1,
        },
        optim={"name": "sgd", "lr": 0.05},
        schedule={"warmup_epochs": 1},
        ema={"enabled": True, "decay": 0.9},
        model={"drop_path_rate": 0.1},
        epochs=4,
        deterministic=True,
        **extra,
    )


def test_resume_continues_exactly(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    recipe = _full_recipe(make_recipe)
    straight = Recorder()
    fit(recipe, straight, tmp_path / "straight")

    crashed = Recorder(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, crashed, tmp_path / "resumed")
    resumed = Recorder()
    final = fit(recipe, resumed, tmp_path / "resumed")

    assert [m["epoch"] for m, _ in resumed.calls] == [3, 4]
    assert _without_times(final) == _without_times(straight.calls[-1][0])
    a = load_file(tmp_path / "straight" / CHECKPOINT_NAME)
    b = load_file(tmp_path / "resumed" / CHECKPOINT_NAME)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    history = [_without_times(m) for m in b["history"]]
    assert history == [_without_times(m) for m, _ in straight.calls]


def test_streamed_data_resumes_exactly(
    make_recipe: RecipeFactory, image_folder: Path, tmp_path: Path
) -> None:
    # Loader workers augment here: their seeds must come back from the checkpoint too.
    recipe = make_recipe(
        data={
            "dataset": "image_folder",
            "path": str(image_folder),
            "num_workers": 1,
            "batch_size": 4,
        },
        augment={"randaugment_layers": 2, "random_erasing": 0.5},
        epochs=3,
        deterministic=True,
    )
    straight = fit(recipe, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, Recorder(stop_after=1), tmp_path / "b")
    resumed = fit(recipe, checkpoint_dir=tmp_path / "b")
    assert _without_times(straight) == _without_times(resumed)
    a = load_file(tmp_path / "a" / CHECKPOINT_NAME)["model"]
    b = load_file(tmp_path / "b" / CHECKPOINT_NAME)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_contents(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    report = Recorder()
    fit(make_recipe(epochs=2, ema={"enabled": True}), report, tmp_path)
    assert [c for _, c in report.calls] == [str(tmp_path)] * 2
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporary left over
    state = load_file(tmp_path / CHECKPOINT_NAME)  # weights_only: plain data only
    expected = {"model", "optimizer", "scheduler", "ema", "scaler", "epoch", "rng", "history"}
    assert expected <= set(state)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert {"python", "numpy", "torch", "order"} <= set(state["rng"][0])


def test_finished_run_returns_its_last_metrics(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    first = fit(make_recipe(), checkpoint_dir=tmp_path)
    report = Recorder()
    again = fit(make_recipe(), report, tmp_path)
    assert again == first and report.calls == []


def test_resume_follows_the_new_hyperparameters(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    # Population Based Training restarts a trial from a checkpoint with a changed recipe.
    with pytest.raises(KeyboardInterrupt):
        fit(make_recipe(epochs=2, schedule={"name": "constant"}), Recorder(1), tmp_path)
    report = Recorder()
    fit(make_recipe(epochs=2, schedule={"name": "constant"}, optim={"lr": 0.2}), report, tmp_path)
    assert report.calls[0][0]["lr"] == pytest.approx(0.2)


def test_initial_weights_from_an_rsearch_checkpoint(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    fit(make_recipe(), checkpoint_dir=tmp_path)
    file = tmp_path / CHECKPOINT_NAME
    model = build_model(make_recipe(model={"pretrained": str(file)}), 4)
    trained = load_file(file)["model"]
    assert trained.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_fp16_on_cpu_is_refused(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="fp16.*needs a CUDA GPU"):
        fit(make_recipe(precision="fp16", device="cpu"))


def test_bf16_and_channels_last(
    make_recipe: RecipeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, torch.dtype]] = []
    import rsearch.train.session as session_module

    build = session_module.build_model

    def spy(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = build(*args, **kwargs)
        model.fc.register_forward_hook(lambda m, i, o: seen.append((False, o.dtype)))
        model.register_forward_pre_hook(
            lambda m, i: seen.append(
                (i[0].is_contiguous(memory_format=torch.channels_last), i[0].dtype)
            )
        )
        return model

    monkeypatch.setattr(session_module, "build_model", spy)
    # 64 px: no strided conv sees a 1-pixel map (see test_bf16_refused_where_...)
    final = fit(make_recipe(precision="bf16", channels_last=True, data={"image_size": 64}))
    assert final["train_loss"] == final["train_loss"]  # not NaN
    inputs = [s for s in seen if s[0]]
    assert inputs and all(dtype == torch.float32 for _, dtype in inputs)  # autocast casts inside
    assert (False, torch.bfloat16) in seen  # the classifier ran in bf16


def test_bf16_refused_where_cpu_gradients_are_wrong(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(), 4)
    assert thin_strided_convs(model, 16) == ["layer4.0.conv1"]  # 16 px: layer4 sees 1x1
    assert thin_strided_convs(model, 64) == []
    if not cpu_bf16_strided_conv_is_wrong():
        pytest.skip("this torch computes bf16 strided-conv gradients correctly")
    with pytest.raises(TrainInputError, match="wrong gradients.*'layer4.0.conv1'"):
        fit(make_recipe(precision="bf16"))


def test_sam_and_lamb_train(make_recipe: RecipeFactory) -> None:
    for optim in ({"name": "sam", "sam_base": "sgd"}, {"name": "lamb", "lr": 0.005}):
        final = fit(make_recipe(optim=optim))
        assert final["train_loss"] > 0


def test_mixup_needs_an_even_batch(make_recipe: RecipeFactory) -> None:
    with pytest.raises(TrainInputError, match="even per-worker batch"):
        fit(make_recipe(data={"batch_size": 15}, augment={"mixup": 0.2}))


def test_identical_runs_report_identical_metrics(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(epochs=2, augment={"mixup": 0.2, "random_erasing": 0.5})
    a, b = fit(recipe), fit(recipe)
    assert _without_times(a) == _without_times(b)
    c = fit(recipe.model_copy(update={"seed": 1}))
    assert _without_times(c) != _without_times(a)
