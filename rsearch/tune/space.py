"""A spec's space as an Optuna define-by-run function, with conditional parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rsearch.errors import UserError
from rsearch.rundir import REJECTED_ATTR, SCALING_ATTR
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import GAMMA_BAND, PREFIX, Infeasible, Strategy, scaled_values
from rsearch.spec.search import SearchSpec
from rsearch.spec.space_paths import apply_params

if TYPE_CHECKING:
    import optuna

AnyParam = FloatParam | IntParam | CategoricalParam

MAX_REJECTED = 200
"""Refused proposals in a row after which a search gives up (its ranges barely fit)."""


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


def suggest(
    trial: optuna.Trial,
    space: dict[str, AnyParam],
    scaling: Strategy | None = None,
    base: Recipe | None = None,
) -> dict[str, Any]:
    """Draw one configuration: each active parameter suggested under its own path.

    With a scaling strategy, its searched parameters are suggested too (`scaling.alpha`)
    and the recipe values it produces join the configuration; its own numbers are kept as
    the trial's `scaling` user attribute.

    Raises:
        Infeasible: The strategy refuses the drawn values (see propose).
    """
    chosen: dict[str, Any] = {}
    for path in ordered(space):
        param = space[path]
        if is_active(param, chosen):
            chosen[path] = suggest_one(trial, path, param)
    if scaling is not None:
        values, info = scaled_values(
            scaling, lambda name, p: suggest_one(trial, name, p), base or Recipe()
        )
        if info:
            trial.set_user_attr(SCALING_ATTR, info)
        chosen.update(values)
    return chosen


def suggest_one(trial: optuna.Trial, name: str, param: AnyParam) -> Any:
    """One Optuna suggestion of a parameter's distribution under name."""
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    return trial.suggest_categorical(name, param.choices)


Accept = Callable[[Recipe], None]
"""accept(recipe) raises Infeasible for a trial recipe that must not train (over budget)."""


def propose(
    study: optuna.Study, spec: SearchSpec, accept: Accept | None = None
) -> tuple[optuna.Trial, dict[str, Any]]:
    """Ask the study for a trial the strategy and the budget accept.

    A refused proposal is told to Optuna as PRUNED, with the reason in its `rejected` user
    attribute, and the next one is asked for: the sampler learns to avoid the region and
    nothing refused ever trains.

    Raises:
        UserError: MAX_REJECTED proposals in a row were refused.
    """
    import optuna

    reasons: list[str] = []
    for _ in range(MAX_REJECTED):
        trial = study.ask()
        try:
            params = suggest(trial, spec.space, spec.scaling, spec.base)
            if accept is not None:
                accept(apply_params(spec.base, params))
            return trial, params
        except Infeasible as refused:
            for key, value in refused.attrs.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr(REJECTED_ATTR, refused.reason)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            reasons.append(refused.reason)
    raise UserError(
        f"{MAX_REJECTED} proposals in a row were refused (last: {reasons[-1]}); widen the "
        "scaling ranges or the constraints"
    )


def search_grid(spec: SearchSpec) -> dict[str, list[Any]]:
    """Every sampler parameter of a grid search with its values: the space's and the strategy's.

    A searched compound gamma sits in the middle of the band the constraint leaves.
    """
    grid = {path: grid_values(param) for path, param in spec.space.items()}

    def record(name: str, param: AnyParam) -> Any:
        grid[name] = [0.5] if name == PREFIX + GAMMA_BAND else grid_values(param)
        return grid[name][0]

    try:
        scaled_values(spec.scaling, record, spec.base)
    except Infeasible:
        pass  # every parameter is drawn before the constraint is checked
    return grid


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
