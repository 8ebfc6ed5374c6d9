"""Dry runs: draw trial configurations with the spec's sampler, without Ray or training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params
from rsearch.tune.searchers import create_study
from rsearch.tune.space import suggest


@dataclass(frozen=True)
class SampledTrial:
    """One drawn configuration: its searched values and the resolved recipe."""

    number: int
    params: dict[str, Any]
    recipe: Recipe


def sample_trials(spec: SearchSpec, n: int) -> list[SampledTrial]:
    """Draw n configurations as the search would propose them (warm starts first).

    Nothing is evaluated, so model-based samplers draw from their start-up distribution.
    """
    study = create_study(spec)
    drawn = []
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, spec.space)
        drawn.append(SampledTrial(trial.number, params, apply_params(spec.base, params)))
    return drawn
