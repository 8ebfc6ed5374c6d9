"""Validation section by section: every problem of a spec or recipe at once.

Each top-level field is validated on its own (each entry of a mapping such as `space` too),
so one bad section hides no other problem; the valid part of an invalid section stands in for
it, so cross-section checks still run on what the user wrote correctly.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from rsearch.spec.errors import Loc, Problem
from rsearch.spec.typewalk import describe_error, tagged_member


def validate_sections(
    model: type[BaseModel], data: dict[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate each top-level field on its own, so one bad section hides no other problem.

    Returns the sections that validated (defaults filled for absent ones) and the problems.
    """
    sections: dict[str, Any] = {}
    problems: list[Problem] = []
    for key in data:
        if key not in model.model_fields:
            problems.append(describe_error(model, {"type": "extra_forbidden", "loc": (key,)}))
    for name, info in model.model_fields.items():
        if name not in data:
            if info.is_required():
                problems.append(Problem((name,), "required field is missing"))
            else:
                sections[name] = info.get_default(call_default_factory=True)
            continue
        tp = _field_type(model, name)
        value = data[name]
        if get_origin(info.annotation) is dict and isinstance(value, dict):
            # One bad entry (a space parameter) must not hide the checks of the others.
            entry_tp = get_args(info.annotation)[1]
            entries = {
                k: _validate_one(entry_tp, v, model, (name, k), problems) for k, v in value.items()
            }
            sections[name] = {k: v for k, v in entries.items() if v is not _INVALID}
        else:
            checked = _validate_one(tp, value, model, (name,), problems)
            if checked is _INVALID:
                checked = _partial(info.annotation, value)
            if checked is not _INVALID:
                sections[name] = checked
    return sections, problems


_INVALID = object()


def _validate_one(
    tp: Any, value: Any, model: type[BaseModel], loc: Loc, problems: list[Problem]
) -> Any:
    try:
        return TypeAdapter(tp).validate_python(value)
    except ValidationError as e:
        problems += [describe_error(model, dict(err), prefix=loc) for err in e.errors()]
        return _INVALID


def _partial(tp: Any, value: Any) -> Any:
    """The valid part of an invalid section, defaults standing in for what failed.

    Cross-section checks then still run on what the user wrote correctly.
    """
    if not isinstance(value, dict):
        return _INVALID
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        tp = tagged_member(tp, value.get("type"))  # a scheduler: pick the member by its tag
        if tp is None:
            return _INVALID
    known = {k: v for k, v in value.items() if k in tp.model_fields}
    sections, _ = validate_sections(tp, known)
    return tp.model_construct(**sections)


def _field_type(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    # The FieldInfo carries constraints and the union discriminator.
    return Annotated[info.annotation, info]
