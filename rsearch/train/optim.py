"""Optimizers, LR schedules, losses, mixup/CutMix and EMA, each from timm's factory.

timm's names and defaults are used as they are, so a recipe means what the same words mean to
timm's train.py; only SAM (absent from timm) is our own, in sam.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.data.mixup import Mixup
from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3, dispatch_clip_grad
from torch import nn
from torch.optim import Optimizer

from rsearch.spec.recipe import AugmentConfig, EmaConfig, LossConfig, OptimConfig, Recipe
from rsearch.train.errors import TrainInputError
from rsearch.train.sam import Sam


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> Optimizer | Sam:
    """timm's optimizer for the recipe, wrapped in SAM when optim.name is 'sam'.

    Weight decay skips biases and norm layers (create_optimizer_v2's filter_bias_and_bn).
    """
    name = cfg.sam_base if cfg.name == "sam" else cfg.name
    try:
        optimizer = create_optimizer_v2(
            model, opt=name, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
    except (ValueError, AssertionError) as e:  # timm's answer to an optimizer name it lacks
        raise TrainInputError(f"timm cannot build optimizer {name!r}: {e}") from e
    return Sam(optimizer, cfg.sam_rho) if cfg.name == "sam" else optimizer


def base_optimizer(optimizer: Optimizer | Sam) -> Optimizer:
    """The torch optimizer that holds the parameter groups (SAM's base, else itself)."""
    return optimizer.base if isinstance(optimizer, Sam) else optimizer


def build_scheduler(optimizer: Optimizer, recipe: Recipe) -> Scheduler:
    """timm's LR schedule for the recipe, stepped once per epoch with the 0-based epoch.

    Raises:
        TrainInputError: step/multistep with a decay epoch below 1.
    """
    cfg = recipe.schedule
    if cfg.name in ("step", "multistep") and any(e < 1 for e in cfg.decay_epochs):
        raise TrainInputError(f"schedule.decay_epochs must be >= 1, got {cfg.decay_epochs}")
    # step decays every decay_epochs[0] epochs; with none listed it never decays.
    period = cfg.decay_epochs[0] if cfg.decay_epochs else recipe.epochs + 1
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg.name,
        num_epochs=recipe.epochs,
        decay_epochs=period,
        decay_milestones=list(cfg.decay_epochs),
        decay_rate=cfg.decay_rate,
        min_lr=cfg.min_lr,
        warmup_lr=cfg.warmup_lr,
        warmup_epochs=cfg.warmup_epochs,
        step_on_epochs=True,
    )
    return scheduler


def build_mixup(aug: AugmentConfig, loss: LossConfig, num_classes: int) -> Mixup | None:
    """timm's batch-wise Mixup/CutMix (which also smooths labels), or None when both are off."""
    if aug.mixup <= 0 and aug.cutmix <= 0:
        return None
    return Mixup(
        mixup_alpha=aug.mixup,
        cutmix_alpha=aug.cutmix,
        prob=aug.mix_prob,
        switch_prob=aug.mix_switch_prob,
        mode="batch",
        label_smoothing=loss.label_smoothing,
        num_classes=num_classes,
    )


def build_train_loss(cfg: LossConfig, mixing: bool) -> nn.Module:
    """The training loss.

    Args:
        cfg: the recipe's loss section.
        mixing: targets are dense (mixup/CutMix on): Mixup has already smoothed them.
    """
    if cfg.name == "bce":
        smoothing = 0.0 if mixing else cfg.label_smoothing
        return BinaryCrossEntropy(smoothing=smoothing, target_threshold=cfg.bce_target_thresh)
    if mixing:
        return SoftTargetCrossEntropy()
    return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)


def build_ema(model: nn.Module, cfg: EmaConfig) -> ModelEmaV3 | None:
    """timm's EMA of model (updated after every optimizer step), or None when off."""
    if not cfg.enabled:
        return None
    return ModelEmaV3(model, decay=cfg.decay, use_warmup=cfg.warmup)


def clip_gradients(parameters: Iterable[torch.Tensor], cfg: OptimConfig) -> None:
    """Clip gradients by norm, value or AGC (timm's dispatch_clip_grad); no-op when unset."""
    if cfg.clip_grad is not None:
        dispatch_clip_grad(parameters, cfg.clip_grad, mode=cfg.clip_mode)
