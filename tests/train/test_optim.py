"""Optimisation ingredients: timm optimizers, SAM, schedules, losses, mixup, EMA, clipping."""

from __future__ import annotations

import numpy as np
import pytest
import timm.optim
import torch
import torch.nn.functional as F
from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from rsearch.spec.recipe import AugmentConfig, EmaConfig, LossConfig, OptimConfig
from rsearch.train.augment import Normalize, TrainTransform
from rsearch.train.model import build_model
from rsearch.train.optim import (
    build_ema,
    build_mixup,
    build_optimizer,
    build_scheduler,
    build_train_loss,
    clip_gradients,
)
from rsearch.train.sam import Sam
from rsearch.train.step import TrainStep
from tests.train.train_helpers import RecipeFactory

CPU = torch.device("cpu")


def _step(model: nn.Module, optim: OptimConfig, ema: EmaConfig | None = None) -> TrainStep:
    return TrainStep(
        net=model,
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=build_optimizer(model, optim),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        clip=optim,
        ema=build_ema(model, ema) if ema else None,
        device=CPU,
        dtype=None,
    )


def _batch(n: int = 8, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def test_lamb_is_timms() -> None:
    optimizer = build_optimizer(nn.Linear(4, 3), OptimConfig(name="lamb", lr=0.01))
    assert type(optimizer) is timm.optim.Lamb
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_weight_decay_skips_biases() -> None:
    optimizer = build_optimizer(nn.Linear(4, 3), OptimConfig(name="adamw", weight_decay=0.1))
    assert isinstance(optimizer, torch.optim.AdamW)
    decays = sorted(g["weight_decay"] for g in optimizer.param_groups)
    assert decays == [0.0, 0.1]


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_sam_takes_two_passes_and_steps_from_the_perturbed_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    w0 = [p.detach().clone() for p in model.parameters()]
    cfg = OptimConfig(
        name="sam", sam_base="momentum", lr=0.1, momentum=0.0, weight_decay=0.0, sam_rho=0.5
    )
    step = _step(model, cfg)
    assert isinstance(step.optimizer, Sam)
    passes = {"forward": 0, "backward": 0}
    model.register_forward_hook(lambda *a: passes.__setitem__("forward", passes["forward"] + 1))
    model.register_full_backward_hook(
        lambda *a: passes.__setitem__("backward", passes["backward"] + 1)
    )
    x, y = _batch()
    step(x, y)
    assert passes == {"forward": 2, "backward": 2}

    # The same update by hand: gradient at w + rho * g / ||g||, applied at w.
    ref = nn.Linear(4, 3)
    with torch.no_grad():
        for p, w in zip(ref.parameters(), w0, strict=True):
            p.copy_(w)
    grads = torch.autograd.grad(F.cross_entropy(ref(x), y), list(ref.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    with torch.no_grad():
        for p, g in zip(ref.parameters(), grads, strict=True):
            p.add_(g * 0.5 / norm)
    grads_at_worst = torch.autograd.grad(F.cross_entropy(ref(x), y), list(ref.parameters()))
    for p, w, g in zip(model.parameters(), w0, grads_at_worst, strict=True):
        assert torch.allclose(p, w - 0.1 * g, atol=1e-6)


def test_plain_optimizer_takes_one_pass() -> None:
    model = nn.Linear(4, 3)
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    _step(model, OptimConfig(name="sgd"))(*_batch())
    assert len(calls) == 1


def test_cosine_schedule_with_warmup(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(
        epochs=10,
        optim={"lr": 0.1},
        schedule={"name": "cosine", "warmup_epochs": 2, "warmup_lr": 0.001, "min_lr": 0.0},
    )
    optimizer = build_optimizer(nn.Linear(2, 2), recipe.optim)
    scheduler = build_scheduler(optimizer, recipe)
    lrs = []
    for epoch in range(10):
        scheduler.step(epoch)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.001)
    assert lrs[1] == pytest.approx(0.001 + (0.1 - 0.001) / 2)
    assert lrs[2] == pytest.approx(0.05 * (1 + torch.cos(torch.tensor(0.2 * torch.pi)).item()))
    assert lrs[2:] == sorted(lrs[2:], reverse=True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # timm's convention: milestone m applies from 0-based epoch m - 1 (reported epoch m)
        ("multistep", [0.1, 0.01, 0.01, 0.001, 0.001]),
        ("step", [0.1, 0.1, 0.01, 0.01, 0.001]),
        ("constant", [0.1] * 5),
    ],
)
def test_step_schedules(make_recipe: RecipeFactory, name: str, expected: list[float]) -> None:
    recipe = make_recipe(
        epochs=5, optim={"lr": 0.1}, schedule={"name": name, "decay_epochs": [2, 4]}
    )
    optimizer = build_optimizer(nn.Linear(2, 2), recipe.optim)
    scheduler = build_scheduler(optimizer, recipe)
    lrs = []
    for epoch in range(5):
        scheduler.step(epoch)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx(expected)


def test_losses() -> None:
    ce = build_train_loss(LossConfig(label_smoothing=0.1), mixing=False)
    assert isinstance(ce, nn.CrossEntropyLoss) and ce.label_smoothing == 0.1
    assert isinstance(build_train_loss(LossConfig(), mixing=True), SoftTargetCrossEntropy)
    bce = build_train_loss(LossConfig(name="bce", label_smoothing=0.1), mixing=False)
    assert isinstance(bce, BinaryCrossEntropy) and bce.smoothing == 0.1


def test_bce_threshold_binarises_targets() -> None:
    logits = torch.randn(4, 5)
    soft = torch.tensor([[0.7, 0.3, 0.0, 0.0, 0.0]] * 4)
    loss = build_train_loss(LossConfig(name="bce", bce_target_thresh=0.2), mixing=True)
    binary = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]] * 4)
    assert loss(logits, soft) == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, binary).item()
    )
    unthresholded = build_train_loss(LossConfig(name="bce"), mixing=True)
    assert unthresholded(logits, soft) != pytest.approx(loss(logits, soft).item())


def test_mixup_changes_targets_and_images() -> None:
    aug = AugmentConfig(random_resized_crop=False, hflip=0.0, mixup=0.8, cutmix=1.0)
    mixup = build_mixup(aug, LossConfig(label_smoothing=0.1), num_classes=4)
    assert mixup is not None
    assert build_mixup(AugmentConfig(), LossConfig(), 4) is None
    normalize = Normalize((0.5,) * 3, (0.5,) * 3, CPU)
    transform = TrainTransform(aug, 8, normalize, True, mixup, False)
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    np.random.seed(0)  # timm's Mixup draws from numpy's global generator
    x, targets = transform(images, labels)
    assert targets.shape == (6, 4)
    assert torch.allclose(targets.sum(dim=1), torch.ones(6))
    assert (targets.max(dim=1).values < 0.95).all()  # mixed and smoothed, never one-hot
    assert not torch.allclose(x, normalize(images))


def test_ema_moves_and_differs_from_raw_weights(make_recipe: RecipeFactory) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    step = _step(model, OptimConfig(lr=0.5), EmaConfig(enabled=True, decay=0.9, warmup=False))
    assert step.ema is not None
    start = [p.detach().clone() for p in step.ema.module.parameters()]
    for _ in range(5):
        step(*_batch())
    ema_params = list(step.ema.module.parameters())
    raw_params = list(model.parameters())
    assert step.updates == 5
    assert any(not torch.equal(e, s) for e, s in zip(ema_params, start, strict=True))
    assert all(not torch.equal(e, r) for e, r in zip(ema_params, raw_params, strict=True))


def test_clipping_modes() -> None:
    def grads(mode: str, value: float) -> list[torch.Tensor]:
        model = nn.Linear(4, 3)
        (model(torch.randn(8, 4) * 100).square().sum()).backward()
        clip_gradients(model.parameters(), OptimConfig(clip_grad=value, clip_mode=mode))
        return [p.grad for p in model.parameters() if p.grad is not None]

    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads("norm", 1.0)]))
    assert norm == pytest.approx(1.0, rel=1e-4)
    assert max(g.abs().max() for g in grads("value", 0.01)) <= 0.01
    model = nn.Linear(4, 3)
    (model(torch.randn(8, 4) * 100).square().sum()).backward()
    before = model.weight.grad.clone()
    clip_gradients(model.parameters(), OptimConfig(clip_grad=0.01, clip_mode="agc"))
    assert model.weight.grad.norm() < before.norm()


def test_ema_in_a_model_from_the_recipe(make_recipe: RecipeFactory) -> None:
    model = build_model(make_recipe(), 4)
    ema = build_ema(model, EmaConfig(enabled=True))
    assert ema is not None and ema.module is not model
    assert build_ema(model, EmaConfig()) is None
