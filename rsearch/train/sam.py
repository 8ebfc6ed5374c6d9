"""Sharpness-Aware Minimisation (Foret et al., 2021) around any torch optimizer.

timm has no SAM. One SAM update is two forward/backward passes:

1. gradient g at the weights w; move to w + e with e = rho * g / ||g|| (the worst nearby point);
2. gradient at w + e; move back to w and let the base optimizer step with that gradient.

The training step (loop.TrainStep) drives the passes; this class holds the perturbation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer


class Sam:
    """The SAM perturbation and update around a base optimizer."""

    def __init__(self, base: Optimizer, rho: float, eps: float = 1e-12):
        """Wrap base.

        Args:
            base: the optimizer taking the actual step (from timm's create_optimizer_v2).
            rho: radius of the neighbourhood searched for the worst weights.
            eps: keeps the division finite when every gradient is zero.
        """
        self.base = base
        self.rho = rho
        self.eps = eps
        self._offsets: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The base optimizer's parameter groups (where the LR schedule writes)."""
        return self.base.param_groups

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for g in self.base.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def perturb(self) -> None:
        """Move the weights to w + rho * g / ||g|| (call after the first backward)."""
        params = self._params_with_grad()
        if not params:
            return
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm(2) for p in params]))  # type: ignore[union-attr]
        scale = self.rho / (norm + self.eps)
        self._offsets = []
        for p in params:
            offset = p.grad * scale.to(p.grad)
            p.add_(offset)
            self._offsets.append((p, offset))

    @torch.no_grad()
    def restore(self) -> None:
        """Move the weights back to w (call after the second backward, before step)."""
        for p, offset in self._offsets:
            p.sub_(offset)
        self._offsets = []

    def step(self) -> None:
        """The base optimizer's step, with the gradient taken at the perturbed weights."""
        self.base.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter."""
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state (SAM keeps none between steps)."""
        return self.base.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the base optimizer's state."""
        self.base.load_state_dict(state)
