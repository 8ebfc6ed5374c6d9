"""A spec's space as an Optuna define-by-run function, with conditional parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rsearch.spec.params import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    import optuna

AnyParam = FloatParam | IntParam | CategoricalParam


def ordered(space: dict[str, AnyParam]) -> list[str]:
    """Parameter paths with every condition's subject before the parameters it gates.

    Validation has already refused cycles, so a stable topological order exists.
    """
    done: list[str] = []

    def visit(path: str) -> None:
        if path in done:
            return
        for ref in space[path].when:
            if ref in space:
                visit(ref)
        done.append(path)

    for path in space:
        visit(path)
    return done


def is_active(param: AnyParam, chosen: dict[str, Any]) -> bool:
    """Whether every condition of param holds for the values chosen so far."""
    for ref, allowed in param.allowed_when().items():
        if ref not in chosen:
            return False
        value = chosen[ref]
        # True == 1 in Python; match booleans only to booleans.
        if not any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed):
            return False
    return True


def suggest(trial: optuna.Trial, space: dict[str, AnyParam]) -> dict[str, Any]:
    """Draw one configuration: each active parameter suggested under its own path."""
    chosen: dict[str, Any] = {}
    for path in ordered(space):
        param = space[path]
        if not is_active(param, chosen):
            continue
        if isinstance(param, FloatParam):
            chosen[path] = trial.suggest_float(
                path, param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            chosen[path] = trial.suggest_int(
                path, param.low, param.high, log=param.log, step=param.step
            )
        else:
            chosen[path] = trial.suggest_categorical(path, param.choices)
    return chosen


def grid_values(param: AnyParam) -> list[Any]:
    """Every value of a finite parameter (grid search)."""
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, IntParam):
        return list(range(param.low, param.high + 1, param.step))
    if param.step is None:
        raise ValueError("a float parameter without step has no grid")
    count = round((param.high - param.low) / param.step)
    # Rounding keeps 0.1 + 2 * 0.1 from printing as 0.30000000000000004.
    return [round(param.low + i * param.step, 12) for i in range(count + 1)]
