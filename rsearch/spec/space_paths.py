"""Dotted paths into a Recipe (`optim.lr`): which exist, what type they hold, setting them."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from rsearch.spec.recipe import Recipe
from rsearch.spec.typewalk import literal_values, walk


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted path of model that ends at a value rather than a section."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        tp = info.annotation
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            paths += leaf_paths(tp, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def leaf_type(model: type[BaseModel], path: str) -> str:
    """A coarse kind of the field at path: float, int, bool, str, choice or other."""
    _, tp = walk(model, tuple(path.split(".")))
    if literal_values(tp):
        return "choice"
    for kind in (bool, int, float, str):  # bool first: it is also an int
        if tp is kind:
            return kind.__name__
    return "other"


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of data with the dotted path set to value (sections created as needed)."""
    out = copy.deepcopy(data)
    node = out
    *parents, leaf = path.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value
    return out


def get_path(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of nested mappings."""
    node: Any = data
    for part in path.split("."):
        node = node[part]
    return node


def apply_params(base: Recipe, params: dict[str, Any]) -> Recipe:
    """The base recipe with each dotted-path parameter set, validated again."""
    data = base.model_dump()
    for path, value in params.items():
        data = set_path(data, path, value)
    return Recipe.model_validate(data)
