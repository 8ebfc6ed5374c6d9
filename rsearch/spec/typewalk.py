"""Turn pydantic errors into Problems with clean field paths and did-you-mean hints."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from rsearch.spec.errors import Loc, Problem
from rsearch.spec.names import suggest


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_member(members: tuple[Any, ...], part: str | int) -> Any | None:
    """The member of a tagged union whose `type` literal is part (pydantic puts tags in locs)."""
    for member in members:
        member = _unwrap(member)
        if _is_model(member) and "type" in member.model_fields:
            if part in get_args(member.model_fields["type"].annotation):
                return member
    return None


def tagged_member(tp: Any, tag: Any) -> Any | None:
    """The model of a tagged union (possibly Annotated) whose `type` is tag, or None."""
    tp = _unwrap(tp)
    if get_origin(tp) not in (Union, types.UnionType) or not isinstance(tag, str):
        return None
    return _union_member(get_args(tp), tag)


def walk(root: type[BaseModel], loc: Loc) -> tuple[Loc, Any]:
    """Follow loc through the model's types.

    Returns:
        The loc without union tags, and the type found at its end (None when lost).
    """
    tp: Any = root
    clean: list[str | int] = []
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            members = tuple(a for a in get_args(tp) if a is not type(None))
            tagged = _union_member(members, part)
            if tagged is not None:
                tp = tagged
                continue
            tp = _unwrap(members[0]) if len(members) == 1 else None
        if tp is None:
            clean.append(part)
            continue
        clean.append(part)
        if _is_model(tp):
            info = tp.model_fields.get(str(part))
            tp = info.annotation if info else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            tp = None
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in get_args(tp) if a is not type(None)]
        tp = _unwrap(rest[0]) if len(rest) == 1 else tp
    return tuple(clean), tp


def field_names(tp: Any) -> list[str]:
    """The field names of a model type, or of every member of a tagged union."""
    if _is_model(tp):
        return list(tp.model_fields)
    if get_origin(tp) in (Union, types.UnionType):
        names: list[str] = []
        for member in get_args(tp):
            names += [n for n in field_names(_unwrap(member)) if n not in names]
        return names
    return []


def describe_error(root: type[BaseModel], err: dict[str, Any], prefix: Loc = ()) -> Problem:
    """A Problem for one pydantic error dict found validating root at prefix."""
    full = (*prefix, *err["loc"])
    loc, _ = walk(root, full)
    kind = err["type"]
    if kind == "extra_forbidden":
        _, parent = walk(root, full[:-1])
        key = str(full[-1])
        return Problem(loc, f"unknown key {key!r}{suggest(key, field_names(parent))}")
    if kind == "missing":
        return Problem(loc, "required field is missing")
    message = str(err.get("msg", kind))
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(noise)
    if kind == "literal_error" and "input" in err:
        message = f"{err['input']!r} is not allowed: {message.lower()}"
    return Problem(loc, message)


def literal_values(tp: Any) -> tuple[Any, ...]:
    """The values of a Literal type (empty for other types)."""
    tp = _unwrap(tp)
    return get_args(tp) if get_origin(tp) is Literal else ()
