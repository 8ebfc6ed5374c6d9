"""Scaling strategies of the seed papers, as a spec section and as pure functions.

A strategy's parameters are fixed numbers or searched distributions; given their values, a
strategy produces the recipe values it scales (model depth/width, resolution, drop rates).
`constraints` bounds the cost of a trial's model; a proposal over budget is rejected before
anything trains (the check itself lives in rsearch.tune, which may build models).

Modules, one concern each:

- strategies: the section's models (none, compound, depth_first, shrink).
- values: strategy parameters -> recipe values (what a trial's recipe gets).
- constraints: the budget section and `Infeasible`, the verdict on a refused proposal.
- resnet_rs: the ResNet-RS paper's block layouts and regularisation by size.
- checks: the section's problems against the space, base recipe, sampler and scheduler.
"""

from rsearch.spec.scaling.checks import check_scaling
from rsearch.spec.scaling.constraints import Constraints, Infeasible
from rsearch.spec.scaling.resnet_rs import RESNET_RS_LAYERS, resnet_rs_regularization
from rsearch.spec.scaling.strategies import (
    AnyStrategy,
    CompoundScaling,
    DepthFirstScaling,
    NoScaling,
    Searched,
    ShrinkScaling,
    Strategy,
)
from rsearch.spec.scaling.values import (
    GAMMA_BAND,
    PREFIX,
    Draw,
    compound_values,
    depth_first_values,
    gamma_band,
    recipe_params,
    scaled_values,
    shrink_values,
    written_paths,
)

__all__ = [
    "GAMMA_BAND",
    "PREFIX",
    "RESNET_RS_LAYERS",
    "AnyStrategy",
    "CompoundScaling",
    "Constraints",
    "DepthFirstScaling",
    "Draw",
    "Infeasible",
    "NoScaling",
    "Searched",
    "ShrinkScaling",
    "Strategy",
    "check_scaling",
    "compound_values",
    "depth_first_values",
    "gamma_band",
    "recipe_params",
    "resnet_rs_regularization",
    "scaled_values",
    "shrink_values",
    "written_paths",
]
