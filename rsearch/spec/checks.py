"""Checks that span several sections of a spec (the space against the Recipe, the objective
against the sampler and scheduler, conditions, warm starts).

Each check takes the sections that validated on their own, so a broken section elsewhere
hides none of these problems.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rsearch.spec.errors import Loc, Problem
from rsearch.spec.eval_checks import check_objective_evaluations
from rsearch.spec.layer_space import check_layer_space
from rsearch.spec.metric_names import MEAN, resolution_of
from rsearch.spec.model_section import ModelConfig
from rsearch.spec.names import suggest
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.pretrained_spec import local_file
from rsearch.spec.recipe import DistillConfig, Recipe
from rsearch.spec.scaling import check_scaling
from rsearch.spec.search import MULTI_OBJECTIVE_ALGORITHMS, Objective, SearchConfig
from rsearch.spec.space_paths import leaf_paths, leaf_type, set_path
from rsearch.spec.typewalk import describe_error

AnyParam = FloatParam | IntParam | CategoricalParam


def check_spec(sections: dict[str, Any], *, warm_starts_ran: bool = False) -> list[Problem]:
    """Every cross-section problem of a spec whose sections are given as validated objects.

    Args:
        sections: The spec's sections that validated.
        warm_starts_ran: The warm-start recipes already ran (an extended search): they are not
            checked against the space, whose ranges may have narrowed since.
    """
    problems: list[Problem] = []
    search: SearchConfig | None = sections.get("search")
    space: dict[str, AnyParam] | None = sections.get("space")
    objectives: list[Objective] | None = sections.get("objective")
    scheduler = sections.get("scheduler")
    if objectives and search:
        problems += check_objectives(objectives, search.algorithm, scheduler)
    if objectives:
        problems += check_objective_resolutions(objectives, sections.get("base") or Recipe())
        problems += check_objective_evaluations(objectives, sections.get("base") or Recipe())
    if space is not None:
        problems += check_space(space, sections.get("base") or Recipe())
        problems += check_layer_space(space, (sections.get("base") or Recipe()).model.model_dump())
        if scheduler is not None and scheduler.type == "pbt":
            problems += check_pbt_space(space)
        if search is not None:
            if not warm_starts_ran:
                problems += check_warm_start(search, space)
            if search.algorithm == "grid":
                problems += check_grid(space)
    base = sections.get("base")
    if isinstance(base, Recipe) and isinstance(base.distill, DistillConfig):
        problems += check_teachers(base.distill, ("base",))
    if isinstance(base, Recipe):
        problems += check_pretrained(base.model, ("base",))
    if space is not None:
        problems += check_pretrained_choices(space)
    resources = sections.get("resources")
    if resources is not None and resources.autoscaling and search and not search.max_concurrent:
        problems.append(
            Problem(
                ("resources", "autoscaling"),
                "an autoscaling search needs search.max_concurrent: it sets how many trials "
                "(and so how many nodes) the search asks the cluster for at once",
            )
        )
    if "scaling" in sections:
        problems += check_scaling(
            sections["scaling"],
            space or {},
            sections.get("base") or Recipe(),
            search.algorithm if search else None,
            scheduler.type if scheduler is not None else None,
        )
    return problems


def check_objectives(objectives: list[Objective], algorithm: str, scheduler: Any) -> list[Problem]:
    """Several objectives need a multi-objective sampler and no single-metric scheduler."""
    if len(objectives) < 2:
        return []
    problems = []
    if algorithm not in MULTI_OBJECTIVE_ALGORITHMS:
        problems.append(
            Problem(
                ("search", "algorithm"),
                f"{algorithm!r} optimises one objective but {len(objectives)} are given; "
                f"use one of {sorted(MULTI_OBJECTIVE_ALGORITHMS)} (nsga2 is the usual choice)",
            )
        )
    if scheduler is not None and scheduler.type != "none":
        problems.append(
            Problem(
                ("scheduler", "type"),
                f"scheduler {scheduler.type!r} stops trials on one metric; a multi-objective "
                "search needs scheduler type 'none'",
            )
        )
    return problems


def check_objective_resolutions(objectives: list[Objective], base: Recipe) -> list[Problem]:
    """An objective at a test resolution (val_top1@48, val_top1@mean) needs the base recipe to
    evaluate there: data.eval_resolutions lists it (or, for @mean, lists any).

    A search cannot vary data.eval_resolutions (categorical choices are scalars), so the base
    recipe's list is every trial's.
    """
    sizes = base.data.eval_resolutions
    problems = []
    for index, objective in enumerate(objectives):
        resolution = resolution_of(objective.metric)
        if resolution is None or resolution in sizes or (resolution == MEAN and sizes):
            continue
        needs = "a test resolution" if resolution == MEAN else str(resolution)
        problems.append(
            Problem(
                ("objective", index, "metric"),
                f"{objective.metric} needs {needs} in base.data.eval_resolutions "
                f"(it lists {sizes or 'none'})",
            )
        )
    return problems


def check_space(space: dict[str, AnyParam], base: Recipe) -> list[Problem]:
    """Each parameter targets a Recipe field that accepts its values; conditions make sense."""
    problems: list[Problem] = []
    paths = leaf_paths(Recipe)
    for path, param in space.items():
        if path not in paths:
            problems.append(_unknown_path(path, paths))
            continue
        problems += _check_values(path, param, base)
        problems += _check_conditions(path, param, space)
    problems += _check_condition_cycles(space)
    return problems


def _unknown_path(path: str, paths: list[str]) -> Problem:
    inside = [p for p in paths if p.startswith(path + ".")]
    if inside:
        shown = ", ".join(inside[:4]) + (", ..." if len(inside) > 4 else "")
        return Problem(("space", path), f"{path!r} is a section; name one of its fields: {shown}")
    return Problem(("space", path), f"{path!r} is not a Recipe field{suggest(path, paths)}")


def _check_values(path: str, param: AnyParam, base: Recipe) -> list[Problem]:
    kind = leaf_type(Recipe, path)
    if isinstance(param, FloatParam) and kind not in ("float",):
        hint = "use type: int" if kind == "int" else "use type: categorical"
        return [Problem(("space", path, "type"), f"{path} is not a real number ({kind}); {hint}")]
    if isinstance(param, IntParam) and kind not in ("int", "float"):
        return [Problem(("space", path, "type"), f"{path} is {kind}; use type: categorical")]
    probes: list[tuple[str, int | None, Any]]
    if isinstance(param, CategoricalParam):
        probes = [("choices", i, v) for i, v in enumerate(param.choices)]
    else:
        probes = [("low", None, param.low), ("high", None, param.high)]
    problems = []
    data = base.model_dump()
    for key, index, value in probes:
        message = field_rejects(data, path, value)
        if message:
            loc = ("space", path, key) if index is None else ("space", path, key, index)
            problems.append(Problem(loc, f"{value!r} is not valid for {path}: {message}"))
    return problems


def field_rejects(data: dict[str, Any], path: str, value: Any) -> str | None:
    """Why the Recipe field at path refuses value (None when it accepts it)."""
    try:
        Recipe.model_validate(set_path(data, path, value))
    except ValidationError as e:
        target = tuple(path.split("."))
        for err in e.errors():
            if tuple(err["loc"])[: len(target)] == target or tuple(err["loc"]) == target[:-1]:
                return describe_error(Recipe, dict(err)).message
    return None


def _check_conditions(path: str, param: AnyParam, space: dict[str, AnyParam]) -> list[Problem]:
    problems = []
    for ref, values in param.allowed_when().items():
        loc = ("space", path, "when", ref)
        other = space.get(ref)
        if ref == path:
            problems.append(Problem(loc, "a parameter cannot be conditional on itself"))
        elif other is None:
            problems.append(Problem(loc, f"unknown parameter {ref!r}{suggest(ref, list(space))}"))
        elif not isinstance(other, CategoricalParam):
            problems.append(
                Problem(
                    loc, f"conditions must name categorical parameters; {ref!r} is {other.type}"
                )
            )
        else:
            for value in values:
                if not other.contains(value):
                    problems.append(
                        Problem(loc, f"{ref} never takes {value!r} (its choices: {other.choices})")
                    )
    return problems


def _check_condition_cycles(space: dict[str, AnyParam]) -> list[Problem]:
    def reaches(node: str, target: str, seen: set[str]) -> bool:
        refs = space[node].when if node in space else {}
        for ref in refs:
            if ref == target or (ref not in seen and reaches(ref, target, seen | {ref})):
                return True
        return False

    return [
        Problem(("space", path, "when"), "conditions form a cycle")
        for path, param in space.items()
        if any(ref != path and ref in space and reaches(ref, path, {ref}) for ref in param.when)
    ]


def check_pbt_space(space: dict[str, AnyParam]) -> list[Problem]:
    """PBT mutates a running trial; parameters that change the model's shape cannot be mutated."""
    return [
        Problem(
            ("space", path),
            "pbt cannot mutate the architecture mid-training; search it with another scheduler",
        )
        for path in space
        if path.startswith("model.") or path in ("data.image_size", "epochs")
    ]


def check_warm_start(search: SearchConfig, space: dict[str, AnyParam]) -> list[Problem]:
    """Each warm-start recipe names space parameters with values their distributions allow."""
    problems = []
    for i, entry in enumerate(search.warm_start):
        for key, value in entry.items():
            loc = ("search", "warm_start", i, key)
            param = space.get(key)
            if param is None:
                problems.append(
                    Problem(loc, f"not a parameter of the space{suggest(key, list(space))}")
                )
            elif not param.contains(value):
                problems.append(Problem(loc, f"{value!r} is outside {key}'s {_describe(param)}"))
    return problems


def _describe(param: AnyParam) -> str:
    if isinstance(param, CategoricalParam):
        return f"choices {param.choices}"
    return f"range [{param.low}, {param.high}]"


def check_grid(space: dict[str, AnyParam]) -> list[Problem]:
    """Grid search needs a finite, fixed grid."""
    problems = []
    for path, param in space.items():
        if isinstance(param, FloatParam) and param.step is None:
            problems.append(
                Problem(
                    ("space", path),
                    "grid search needs a finite grid: give this float a step, or use categorical",
                )
            )
        if param.when:
            problems.append(
                Problem(("space", path, "when"), "grid search cannot use conditional parameters")
            )
    return problems


def check_teachers(distill: DistillConfig, prefix: tuple[str, ...] = ()) -> list[Problem]:
    """Distillation teachers whose files are missing (the cheap part; no run is opened).

    A checkpoint must exist; a run directory given by its path must exist. A run given by a
    glob pattern may match nothing yet: the search that makes it may run later, and the
    pattern is resolved (and refused if it still matches nothing) when training starts.
    Whether a run has completed trials, and whether a teacher fits the data, is checked then.
    """
    problems = []
    for i, teacher in enumerate(distill.teachers):
        loc: Loc = (*prefix, "distill", "teachers", i)
        if teacher.checkpoint is not None and not Path(teacher.checkpoint).expanduser().exists():
            message = f"checkpoint {teacher.checkpoint!r} does not exist"
            problems.append(Problem((*loc, "checkpoint"), message))
        if teacher.run is not None and not glob.has_magic(teacher.run):
            if not Path(teacher.run).expanduser().is_dir():
                message = f"run directory {teacher.run!r} does not exist"
                problems.append(Problem((*loc, "run"), message))
    return problems


def check_pretrained(model: ModelConfig, prefix: tuple[str, ...] = ()) -> list[Problem]:
    """A model.pretrained file that does not exist (its contents are read when training starts)."""
    if model.pretrained is None:
        return []
    try:
        local_file(model.pretrained)
    except ValueError:
        return []  # not a path at all: the field's own validation said why
    if Path(model.pretrained).expanduser().exists():
        return []
    loc: Loc = (*prefix, "model", "pretrained")
    return [Problem(loc, f"pretrained weights {model.pretrained!r} do not exist")]


def check_pretrained_choices(space: dict[str, AnyParam]) -> list[Problem]:
    """Pretrained files a search chooses between (model.pretrained as a categorical) exist."""
    param = space.get("model.pretrained")
    if not isinstance(param, CategoricalParam):
        return []
    return [
        Problem(("space", "model.pretrained", "choices", i), f"{v!r} does not exist")
        for i, v in enumerate(param.choices)
        if isinstance(v, str) and not Path(v).expanduser().exists()
    ]
