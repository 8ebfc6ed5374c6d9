"""One optimizer update: forward/backward (twice under SAM), clipping, step, EMA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.optim import Optimizer

from rsearch.spec.recipe import OptimConfig
from rsearch.train.distill import TeacherEnsemble
from rsearch.train.optim import base_optimizer, clip_gradients
from rsearch.train.runtime import autocast
from rsearch.train.sam import Sam


@dataclass
class TrainStep:
    """Callable that trains on one batch and returns its (detached) mean loss.

    No value is read back to the host here: a per-step .item() would stall a GPU pipeline.
    """

    net: nn.Module
    """What the forward pass runs through (the model, or its DDP/compiled wrapper)."""
    model: nn.Module
    """The bare model: its parameters are clipped and averaged into the EMA."""
    loss_fn: nn.Module
    optimizer: Optimizer | Sam
    scaler: torch.amp.GradScaler
    """Loss scaling for fp16 (disabled, hence a pass-through, otherwise)."""
    clip: OptimConfig
    ema: ModelEmaV3 | None
    device: torch.device
    dtype: torch.dtype | None
    """Autocast dtype, None for fp32."""
    updates: int = 0
    """Optimizer steps taken so far (the EMA warmup counts them)."""
    distill: TeacherEnsemble | None = None
    """The teachers whose averaged soft labels are the targets (loss_fn is a DistillLoss)."""

    def __call__(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        goal: Any = targets
        if self.distill is not None:  # once a step, also under SAM: the same batch twice
            goal = self.distill.targets(x, targets)
        loss = self._forward_backward(x, goal)
        if isinstance(self.optimizer, Sam):
            self.optimizer.perturb()
            self.optimizer.zero_grad()
            self._forward_backward(x, goal)
            self.optimizer.restore()
        self._update()
        return loss.detach()

    def _forward_backward(self, x: torch.Tensor, targets: Any) -> torch.Tensor:
        with autocast(self.device, self.dtype):
            loss = self.loss_fn(self.net(x), targets)
        self.scaler.scale(loss).backward()
        return loss

    def _update(self) -> None:
        optimizer = base_optimizer(self.optimizer)
        if self.clip.clip_grad is not None:
            self.scaler.unscale_(optimizer)  # clip thresholds are in unscaled units
            clip_gradients(self.model.parameters(), self.clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.updates)
