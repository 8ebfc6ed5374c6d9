"""Dry runs: draw trial configurations with the spec's sampler, without Ray or training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rsearch.rundir import SCALING_ATTR
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params
from rsearch.tune.budget import budget_check
from rsearch.tune.searchers import create_study
from rsearch.tune.space import propose


@dataclass(frozen=True)
class SampledTrial:
    """One drawn configuration: its searched values and the resolved recipe."""

    number: int
    params: dict[str, Any]
    recipe: Recipe
    scaling: dict[str, float] = field(default_factory=dict)
    """The scaling strategy's numbers (alpha, beta, gamma, phi, product; depth; r, w, d)."""


def sample_trials(spec: SearchSpec, n: int) -> list[SampledTrial]:
    """Draw n configurations as the search would propose them (warm starts first).

    Nothing is evaluated, so model-based samplers draw from their start-up distribution.
    Proposals the scaling strategy or the budget refuses are skipped, as the search skips
    them (the budget check builds each model on the meta device: torch is imported).
    """
    study = create_study(spec)
    accept = budget_check(spec)
    drawn = []
    for _ in range(n):
        trial, params = propose(study, spec, accept)
        recipe = apply_params(spec.base, params)
        scaling = dict(trial.user_attrs.get(SCALING_ATTR, {}))
        drawn.append(SampledTrial(trial.number, params, recipe, scaling))
    return drawn
