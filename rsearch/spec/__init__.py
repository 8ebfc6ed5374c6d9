"""Search specs and recipes as pydantic models; imports no torch, ray or mlflow."""

from rsearch.spec.errors import Location, Problem, SpecError
from rsearch.spec.load import (
    extended_spec,
    load_recipe,
    load_spec,
    load_spec_or_recipe,
    parse_spec_text,
)
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam, Param
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Objective, SearchSpec

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Location",
    "Objective",
    "Param",
    "Problem",
    "Recipe",
    "SearchSpec",
    "SpecError",
    "extended_spec",
    "load_recipe",
    "load_spec",
    "load_spec_or_recipe",
    "parse_spec_text",
]
