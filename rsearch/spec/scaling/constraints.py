"""The budget of a trial's model, and the verdict on a proposal that breaks it or its strategy."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rsearch.spec.base import Strict


class Infeasible(Exception):  # noqa: N818  (a verdict on a proposal, not a program error)
    """A proposal the strategy or the budget refuses; the sampler is told it as PRUNED."""

    def __init__(self, reason: str, attrs: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.attrs = attrs or {}


class Constraints(Strict):
    """Limits on a trial's model, checked before it trains (over budget: PRUNED, never trained).

    The check itself lives in rsearch.tune, which may build models; this section only says
    what the limits are and which of them a measured cost breaks.
    """

    max_gflops: float | None = Field(None, gt=0.0)
    """Most multiply-add GFLOPs of one image's forward pass at the evaluation resolution."""
    max_params_m: float | None = Field(None, gt=0.0)
    """Most parameters, in millions."""

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return self.max_gflops is not None or self.max_params_m is not None

    def violations(self, cost: dict[str, float]) -> list[str]:
        """What a model of this cost ({"gflops", "params_m"}) breaks, as readable phrases."""
        out = []
        if self.max_gflops is not None and cost["gflops"] > self.max_gflops:
            out.append(f"{cost['gflops']:.4g} GFLOPs > max_gflops {self.max_gflops:g}")
        if self.max_params_m is not None and cost["params_m"] > self.max_params_m:
            out.append(f"{cost['params_m']:.4g} M params > max_params_m {self.max_params_m:g}")
        return out
