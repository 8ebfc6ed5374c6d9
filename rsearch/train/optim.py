"""Optimizers, LR schedules, losses, mixup/CutMix and EMA, each from timm's factory.

timm's names and defaults are used as they are, so a recipe means what the same words mean to
timm's train.py; only SAM (absent from timm) is our own, in sam.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from timm.data.mixup import Mixup
from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3, dispatch_clip_grad
from torch import nn
from torch.optim import Optimizer

from rsearch.spec.recipe import (
    AugmentConfig,
    EmaConfig,
    LossConfig,
    OptimConfig,
    Recipe,
    ScheduleConfig,
)
from rsearch.train.balance import weighted_ce
from rsearch.train.errors import TrainInputError
from rsearch.train.finetune import backbone_groups
from rsearch.train.sam import Sam
from rsearch.train.stages import stretches


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> Optimizer | Sam:
    """timm's optimizer for the recipe, wrapped in SAM when optim.name is 'sam'.

    Weight decay skips biases and norm layers (create_optimizer_v2's filter_bias_and_bn).
    With optim.layer_decay, timm groups the parameters by layer (the model's group_matcher)
    and gives each group an `lr_scale` that timm's LR schedules multiply the LR by.
    optim.backbone_lr_scale scales every group but the classifier's (rsearch.train.finetune).
    """
    name = cfg.sam_base if cfg.name == "sam" else cfg.name
    scaled = cfg.backbone_lr_scale is not None
    try:
        optimizer = create_optimizer_v2(
            model,
            opt=name,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
            layer_decay=cfg.layer_decay,
            # timm's hook for custom groups; it then builds no groups of its own.
            param_group_fn=(lambda m: backbone_groups(m, cfg)) if scaled else None,
        )
    except (ValueError, AssertionError) as e:  # timm's answer to an optimizer name it lacks
        raise TrainInputError(f"timm cannot build optimizer {name!r}: {e}") from e
    return Sam(optimizer, cfg.sam_rho) if cfg.name == "sam" else optimizer


def base_optimizer(optimizer: Optimizer | Sam) -> Optimizer:
    """The torch optimizer that holds the parameter groups (SAM's base, else itself)."""
    return optimizer.base if isinstance(optimizer, Sam) else optimizer


class EpochSchedule(Protocol):
    """An LR schedule stepped once per epoch with the 0-based epoch, saved in checkpoints."""

    def step(self, epoch: int) -> None:
        """Set the learning rate of an epoch."""

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a saved state."""


class StagedSchedule:
    """schedule.restart_per_stage: one timm schedule per stretch of epochs (each
    data.progressive stage, then the epochs after the last), each warming up and decaying
    over its own epochs."""

    def __init__(self, parts: list[tuple[int, Scheduler]]):
        """Args: parts: (first epoch, schedule) of each stretch, in order from epoch 0."""
        self.parts = parts

    def step(self, epoch: int) -> None:
        start, part = next((s, p) for s, p in reversed(self.parts) if s <= epoch)
        part.step(epoch - start)

    def state_dict(self) -> dict[str, Any]:
        return {"stretches": [part.state_dict() for _, part in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for (_, part), saved in zip(self.parts, state_dict["stretches"], strict=True):
            part.load_state_dict(saved)


def build_scheduler(optimizer: Optimizer, recipe: Recipe) -> EpochSchedule:
    """timm's LR schedule for the recipe, stepped once per epoch with the 0-based epoch.

    One schedule spans every epoch, data.progressive stages included (a trial promoted to
    its next stage continues its warm-up or decay where it was), unless
    schedule.restart_per_stage gives each stretch its own (StagedSchedule).

    Raises:
        TrainInputError: step/multistep with a decay epoch below 1.
    """
    cfg = recipe.schedule
    if cfg.name in ("step", "multistep") and any(e < 1 for e in cfg.decay_epochs):
        raise TrainInputError(f"schedule.decay_epochs must be >= 1, got {cfg.decay_epochs}")
    if not (cfg.restart_per_stage and recipe.data.progressive):
        return _timm_schedule(optimizer, cfg, recipe.epochs)
    parts = [
        (start, _timm_schedule(optimizer, cfg, count)) for start, count, _ in stretches(recipe)
    ]
    return StagedSchedule(parts)


def _timm_schedule(optimizer: Optimizer, cfg: ScheduleConfig, epochs: int) -> Scheduler:
    # step decays every decay_epochs[0] epochs; with none listed it never decays.
    period = cfg.decay_epochs[0] if cfg.decay_epochs else epochs + 1
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg.name,
        num_epochs=epochs,
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


def build_train_loss(
    cfg: LossConfig, mixing: bool, class_weight: torch.Tensor | None = None
) -> nn.Module:
    """The training loss.

    Args:
        cfg: the recipe's loss section.
        mixing: targets are dense (mixup/CutMix on): Mixup has already smoothed them.
        class_weight: per-class cross-entropy weights (loss.class_weights), or None.
    """
    if class_weight is not None:
        return weighted_ce(cfg, class_weight)
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
