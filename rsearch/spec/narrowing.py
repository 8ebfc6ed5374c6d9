"""What an extended search may change: the comparison of a search's spec with its extension.

`rsearch extend` adds trials to the same Optuna study, so every trial the study already holds
must stay a trial of the extended search. That allows the knobs that only say how the new
trials run (concurrency, retries, resources), the compute budget of the whole search (its spend
so far counts against it), and numeric ranges narrowed inside the old ones; anything that
changes what a trial means (objective, base recipe, sampler, scheduler,
a parameter added, removed or widened) is refused. A categorical's choices stay as they were
too: Optuna refuses a changed CategoricalDistribution for a parameter its study already holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from rsearch.spec.errors import Loc, Problem
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.search import SearchSpec

AnyParam = FloatParam | IntParam | CategoricalParam

ADJUSTABLE: tuple[Loc, ...] = (
    ("search", "max_concurrent"),
    ("search", "max_failures"),
    ("search", "budget"),
    ("resources",),
)
"""Fields an extension may set freely: how the new trials run, not what they mean."""

ALLOWED = (
    "an extension may narrow space ranges and set search.max_concurrent, search.max_failures, "
    "search.budget and resources.*"
)

WHAT: dict[Loc, str] = {
    ("objective",): "the objective",
    ("base",): "the base recipe",
    ("search", "algorithm"): "the sampler (search.algorithm)",
    ("scheduler", "type"): "the scheduler type",
    ("search", "num_trials"): "the trial count (--trials adds to it)",
}
"""Names of the refused changes users make most, by the field (or section) they live in."""


def narrowing_problems(old: SearchSpec, new: SearchSpec) -> list[Problem]:
    """Every change from old to new that an extension of the search may not make.

    Args:
        old: The spec the search ran (its latest extension's, if it was extended before).
        new: The same spec with the extension's overrides applied; its num_trials still old's.

    Returns:
        One problem per refused change, located at the changed field, naming old and new.
    """
    problems = _space_problems(old.space, new.space)
    before = old.model_dump(mode="json", exclude={"space"})
    after = new.model_dump(mode="json", exclude={"space"})
    for loc, was, now in _differences(before, after, ()):
        if not any(loc[: len(a)] == a for a in ADJUSTABLE):
            problems.append(_refused_change(loc, was, now))
    return problems


def _refused_change(loc: Loc, was: Any, now: Any) -> Problem:
    section = next((k for k in WHAT if loc[: len(k)] == k), None)
    change = f"{_show(was)} -> {_show(now)}"
    if section is None:
        return Problem(loc, f"cannot change when extending a search ({change}); {ALLOWED}")
    return Problem(loc, f"{WHAT[section]} cannot change when extending a search ({change})")


def _differences(was: Any, now: Any, loc: Loc) -> Iterator[tuple[Loc, Any, Any]]:
    """The leaves where two dumped specs differ: (path, old value, new value).

    Of two sections of different `type` (a scheduler, a scaling strategy) only the type is
    named: their other fields differ as a consequence.
    """
    if isinstance(was, Mapping) and isinstance(now, Mapping):
        if "type" in was and was.get("type") != now.get("type"):
            yield (*loc, "type"), was.get("type"), now.get("type")
            return
        for key in [*was, *(k for k in now if k not in was)]:
            yield from _differences(was.get(key), now.get(key), (*loc, key))
    elif was != now:
        yield loc, was, now


def _space_problems(old: Mapping[str, AnyParam], new: Mapping[str, AnyParam]) -> list[Problem]:
    problems = [
        Problem(
            ("space", path),
            "cannot remove a parameter when extending a search: the study's trials sampled it",
        )
        for path in old
        if path not in new
    ]
    problems += [
        Problem(
            ("space", path),
            "cannot add a parameter when extending a search: the study's trials never sampled it",
        )
        for path in new
        if path not in old
    ]
    for path in old:
        if path in new:
            reason = narrowing_refusal(old[path], new[path])
            if reason is not None:
                problems.append(Problem(("space", path), reason))
    return problems


def narrowing_refusal(old: AnyParam, new: AnyParam) -> str | None:
    """Why new is not old narrowed (None: it is), in one line naming both.

    A numeric parameter may raise its low and lower its high; its scale (log), step and
    conditions stay, and a stepped parameter keeps its grid. A categorical keeps its choices.
    """
    if type(old) is not type(new):
        return f"a {old.type} parameter cannot become {new.type} when extending a search"
    if old.when != new.when:
        return f"its conditions cannot change when extending a search ({old.when} -> {new.when})"
    if isinstance(old, CategoricalParam) and isinstance(new, CategoricalParam):
        if old.choices == new.choices:
            return None
        return (
            f"choices {old.choices} cannot become {new.choices} when extending a search: an "
            "Optuna study keeps a categorical parameter's choices for all its trials"
        )
    assert isinstance(old, FloatParam | IntParam) and isinstance(new, FloatParam | IntParam)
    return _numeric_refusal(old, new)


def _numeric_refusal(old: FloatParam | IntParam, new: FloatParam | IntParam) -> str | None:
    was, now = _range(old), _range(new)
    if old.log != new.log:
        return f"log cannot change when extending a search ({old.log} -> {new.log})"
    if old.step != new.step:
        return f"step cannot change when extending a search ({old.step} -> {new.step})"
    if new.low < old.low or new.high > old.high:
        return (
            f"range {now} widens {was}; an extended search may only narrow a range "
            f"(low >= {_show(old.low)}, high <= {_show(old.high)})"
        )
    if old.step is not None and not _on_grid(new.low - old.low, old.step):
        return (
            f"range {now} is off the grid of {was} in steps of {_show(old.step)}: its low "
            "must be one of the old values"
        )
    return None


def _on_grid(offset: float, step: float) -> bool:
    steps = offset / step
    return math.isclose(steps, round(steps), rel_tol=1e-9, abs_tol=1e-9)


def _range(param: FloatParam | IntParam) -> str:
    return f"[{_show(param.low)}, {_show(param.high)}]"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict) or value is None:
        return json.dumps(value)
    return str(value)
