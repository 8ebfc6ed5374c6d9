"""Ray Tune trial schedulers for a spec's `scheduler` section.

Successive halving (ASHA, Hyperband) counts epochs, or with `unit: compute` the compute a trial
has spent in full-fidelity epoch equivalents (`rsearch.tune.rungs`), so a rung at low
resolution or on a fraction of the data counts as the cheap rung it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.search import SearchSpec
from rsearch.tune.optuna_searcher import OPTUNA_TRIAL, PARAMS
from rsearch.tune.rungs import ray_grace, ray_max_t, time_attr

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

AnyParam = FloatParam | IntParam | CategoricalParam


def make_scheduler(spec: SearchSpec) -> TrialScheduler | None:
    """The scheduler the spec asks for, or None to run every trial to the end."""
    from ray.tune import schedulers as s

    from rsearch.plan import scheduler_max_t  # deferred: may count the base model's FLOPs

    cfg = spec.scheduler
    objective = spec.objective[0]
    common: dict[str, Any] = {
        "time_attr": time_attr(spec),
        "metric": objective.metric,
        "mode": objective.direction,
    }
    if cfg.type == "none":
        return None
    # Ray's schedulers count in whole units: the compute unit is counted in ticks.
    max_t = ray_max_t(spec, scheduler_max_t(spec))
    if cfg.type == "asha":
        return s.ASHAScheduler(
            **common,
            max_t=max_t,
            grace_period=ray_grace(spec),
            reduction_factor=cfg.reduction_factor,
            brackets=cfg.brackets,
        )
    if cfg.type == "hyperband":
        return s.HyperBandScheduler(**common, max_t=max_t, reduction_factor=cfg.reduction_factor)
    if cfg.type == "median":
        return s.MedianStoppingRule(
            **common, grace_period=cfg.grace_period, min_samples_required=cfg.min_samples_required
        )
    return s.PopulationBasedTraining(
        **common,
        perturbation_interval=cfg.perturbation_interval,
        hyperparam_mutations={PARAMS: pbt_param_space(spec)[PARAMS]},
        quantile_fraction=cfg.quantile_fraction,
        resample_probability=cfg.resample_probability,
        synch=cfg.synchronous,
        custom_explore_fn=lambda config: clamp_to_space(config, spec),
    )


def pbt_param_space(spec: SearchSpec) -> dict[str, Any]:
    """The space as Ray Tune domains, shaped like a trial's config (PBT's mutations)."""
    return {PARAMS: {path: tune_domain(p) for path, p in spec.space.items()}, OPTUNA_TRIAL: -1}


def tune_domain(param: AnyParam) -> Any:
    """The Ray Tune search domain PBT resamples a parameter from."""
    from ray import tune

    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, IntParam):
        if param.log:
            return tune.lograndint(param.low, param.high + 1)
        return tune.qrandint(param.low, param.high, param.step)
    if param.step is not None:
        return tune.quniform(param.low, param.high, param.step)
    return (
        tune.loguniform(param.low, param.high) if param.log else tune.uniform(param.low, param.high)
    )


def clamp_to_space(config: dict[str, Any], spec: SearchSpec) -> dict[str, Any]:
    """PBT perturbs numbers by x0.8 / x1.2 without bounds; pull them back into the space."""
    params = dict(config[PARAMS])
    for path, param in spec.space.items():
        value = params.get(path)
        if value is None or isinstance(param, CategoricalParam):
            continue
        value = min(max(value, param.low), param.high)
        params[path] = int(round(value)) if isinstance(param, IntParam) else float(value)
    return {**config, PARAMS: params}
