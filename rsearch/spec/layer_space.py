"""Searched norm/act layers checked against the searched (or base) model, choice by choice.

A norm_layer choice is checked against the base model by validating the Recipe with it
(rsearch.spec.checks.field_rejects). What that cannot see are pairs across fields: a model.name
choice against the base norm_layer, a norm_layer choice against the base act_layer, and two
searched fields against each other. Each such pair is reported at the searched choice that
makes it fail; a `when` condition on model.name or model.norm_layer limits the pairs.
"""

from __future__ import annotations

import itertools
from typing import Any

from rsearch.spec import layers
from rsearch.spec.errors import Problem
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam

AnyParam = FloatParam | IntParam | CategoricalParam
FIELDS = ("name", "norm_layer", "norm_groups", "act_layer")


def check_layer_space(space: dict[str, AnyParam], base: dict[str, Any]) -> list[Problem]:
    """Problems of searched model/norm/act pairs that the one-field probes miss.

    Args:
        space: The spec's space.
        base: The base recipe's model section as a dict (ModelConfig.model_dump()).
    """
    searched = {f: space[f"model.{f}"] for f in FIELDS if f"model.{f}" in space}
    if not searched or set(searched) == {"norm_groups"}:
        return []
    options = {f: _options(searched[f]) if f in searched else [(None, base[f])] for f in FIELDS}
    found: dict[tuple[str | int, ...], str] = {}
    for combo in itertools.product(*(options[f] for f in FIELDS)):
        values = {f: value for f, (_, value) in zip(FIELDS, combo, strict=True)}
        index = {f: i for f, (i, _) in zip(FIELDS, combo, strict=True)}
        _apply_conditions(searched, values, index, base)
        for fields, message in _pair_problems(values):
            loc = _blame(fields, index)
            if loc is not None and not _probe_sees(fields, index):
                found.setdefault(loc, message)
    return [Problem(loc, message) for loc, message in found.items()]


def _options(param: AnyParam) -> list[tuple[int | None, Any]]:
    if isinstance(param, CategoricalParam):
        return list(enumerate(param.choices))
    return [(None, param.low)]  # a numeric group count: only whether it is set matters


def _apply_conditions(
    searched: dict[str, AnyParam],
    values: dict[str, Any],
    index: dict[str, int | None],
    base: dict[str, Any],
) -> None:
    # A parameter whose condition fails is not sampled: the trial keeps the base value.
    for field, param in searched.items():
        for ref, allowed in param.allowed_when().items():
            other = ref.removeprefix("model.")
            if ref.startswith("model.") and other in values and values[other] not in allowed:
                values[field], index[field] = base[field], None


def _pair_problems(values: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    if not _known(values):
        return []  # a bad value is reported by the one-field probe, once
    checks = [
        (("name", "norm_layer"), layers.norm_problem(values["name"], values["norm_layer"])),
        (
            ("name", "norm_layer", "act_layer"),
            layers.act_problem(values["name"], values["norm_layer"], values["act_layer"]),
        ),
        (
            ("norm_layer", "norm_groups"),
            layers.groups_problem(values["norm_layer"], values["norm_groups"]),
        ),
    ]
    return [(fields, message) for fields, message in checks if message]


def _blame(fields: tuple[str, ...], index: dict[str, int | None]) -> tuple[str | int, ...] | None:
    # The last searched field of the pair takes the blame: the layer choice rather than the
    # model, the activation rather than the norm it cannot follow.
    for field in reversed(fields):
        choice = index[field]
        if choice is not None:
            return ("space", f"model.{field}", "choices", choice)
    return None


def _probe_sees(fields: tuple[str, ...], index: dict[str, int | None]) -> bool:
    # field_rejects validates one choice against the base recipe and reports errors at that
    # field: the last field of the pair searched alone.
    last = fields[-1]
    return index[last] is not None and all(index[f] is None for f in fields if f != last)


def _known(values: dict[str, Any]) -> bool:
    return (
        isinstance(values["name"], str)
        and (values["norm_layer"] is None or values["norm_layer"] in layers.ALL_NORMS)
        and (values["act_layer"] is None or values["act_layer"] in layers.ACTIVATIONS)
    )
