"""The budget check of a trial's model (constraints.max_gflops / max_params_m), before it trains.

The model is built on the meta device (no weights, no data) and its cost counted at the
evaluation resolution, so the check costs a fraction of a second; a proposal over budget is
refused (told to Optuna as PRUNED by `space.propose`) and never reaches a Ray Train worker.
"""

from __future__ import annotations

from functools import partial

from rsearch.rundir import COST_ATTR
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import Constraints, Infeasible
from rsearch.spec.search import SearchSpec
from rsearch.tune.space import Accept


def check_budget(constraints: Constraints, recipe: Recipe) -> None:
    """Refuse a recipe whose model breaks the constraints.

    Raises:
        Infeasible: The model is over budget (its cost travels along as a user attribute).
        TrainInputError: The model cannot be built at all.
    """
    from rsearch.train.measure import model_cost  # deferred: imports torch and timm

    cost = model_cost(recipe)
    broken = constraints.violations(cost)
    if broken:
        raise Infeasible("over budget: " + "; ".join(broken), {COST_ATTR: cost})


def budget_check(spec: SearchSpec) -> Accept | None:
    """The spec's budget check for `space.propose`, or None when it sets no limit."""
    return partial(check_budget, spec.constraints) if spec.constraints.active else None
