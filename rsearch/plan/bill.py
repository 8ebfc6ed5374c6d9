"""The bill of a search before it runs: trials, rungs, FLOPs, device-hours, wall-clock, budget.

The trials are drawn as `rsearch sample` draws them (warm starts first, the scaling strategy
and constraints applied); each is priced epoch by epoch (rsearch.plan.cost) and stopped where
the scheduler is expected to stop it (rsearch.plan.rungs). A trial's expected spend weighs its
spend up to each stop by the chance of stopping there. The wall-clock lays the trials, in
proposal order, on as many slots as the cluster runs at once (`rsearch.tune.capacity`), each
taking the next free slot.

This module asks `rsearch.tune` (its Ray-free sampling and concurrency) and so sits on top, as
the CLI does; the rest of the package depends on `spec` and `train` only, so the search driver
can price proposals with it (`rungs.admission_cost`).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rsearch.plan.cost import (
    NOTHING,
    SpeedSource,
    Spend,
    TrialCost,
    added,
    cost_to_epoch,
    device_kind,
    estimate_trial,
)
from rsearch.plan.rungs import (
    Schedule,
    expected_spend,
    schedule,
    scheduler_max_t,
    trial_end,
)
from rsearch.plan.throughput import Speed
from rsearch.spec.base import Strict
from rsearch.spec.search import SearchSpec

UNIT_NOTES = {
    "epochs": "rungs count epochs",
    "compute": "rungs count compute in full-fidelity epoch equivalents: a rung ends after the "
    "first epoch whose cumulative fidelity reaches it",
}
SAMPLER_NOTE = (
    "trials are drawn as `rsearch sample` draws them: nothing is evaluated, so a model-based "
    "sampler's later trials come from its start-up distribution"
)
WALL_NOTE = (
    "wall-clock counts training and evaluation at the planned concurrency; Ray start-up, "
    "data loading and checkpoints are not included"
)
UPPER_BOUND_NOTE = {
    "median": "the median stopping rule may stop trials early: every trial is priced at its "
    "whole budget, an upper bound",
    "pbt": "PBT copies checkpoints but stops no trial: every trial runs its whole budget, an "
    "upper bound",
}
SPEED_NOTES = {
    "measured": "device time from training throughput measured on this machine per "
    "architecture and resolution (cached)",
    "reference": "device time from FLOPs at the FLOPs/s of a reference model (resnet18, 32 px) "
    "measured on this machine (--no-measure)",
    "nominal": "device time from FLOPs at a nominal FLOPs/s: this machine lacks the device",
}


class Amount(Strict):
    """What a trial (or a search) spends."""

    epochs: float = Field(ge=0)
    """Epochs trained (an expectation may be fractional)."""
    train_flops: float = Field(ge=0)
    """Training FLOPs (2 per multiply-add)."""
    eval_flops: float = Field(ge=0)
    """Evaluation FLOPs (twice with EMA)."""
    flops: float = Field(ge=0)
    """Training plus evaluation FLOPs."""
    fidelity: float = Field(ge=0)
    """Compute in full-fidelity epoch equivalents."""
    device_hours: float = Field(ge=0)
    """Hours of one worker's device, summed over the trial's workers."""
    wall_hours: float = Field(ge=0)
    """Hours the trial takes."""

    @classmethod
    def of(cls, spend: Spend) -> Amount:
        """The amount of a spend."""
        return cls(
            epochs=spend.epochs,
            train_flops=spend.train_flops,
            eval_flops=spend.eval_flops,
            flops=spend.flops,
            fidelity=spend.fidelity,
            device_hours=spend.device_hours,
            wall_hours=spend.wall_s / 3600.0,
        )


class TrialPlan(Strict):
    """One proposed trial and its price."""

    number: int = Field(ge=0)
    """Optuna trial number, as `rsearch sample` shows it."""
    params: dict[str, Any]
    """The searched values."""
    scaling: dict[str, float]
    """The scaling strategy's numbers, if any."""
    model: str
    """timm model name."""
    image_size: int = Field(ge=1)
    """Final train resolution."""
    eval_image_size: int = Field(ge=1)
    """Final evaluation resolution."""
    epochs: int = Field(ge=1)
    """Epochs of its whole budget (its recipe's, capped by the scheduler's max_t)."""
    train_images_per_s: float = Field(gt=0)
    """One worker's training throughput at the final resolution."""
    full: Amount
    """Its whole budget."""
    expected: Amount
    """Expected under the scheduler (equal to `full` when nothing stops trials)."""


class RungPlan(Strict):
    """A rung of a bracket."""

    milestone: float = Field(gt=0)
    """In the scheduler's unit."""
    trials: int = Field(ge=0)
    """Trials expected to reach it."""


class BracketPlan(Strict):
    """A bracket of a successive-halving scheduler (one bracket without one)."""

    trials: int = Field(ge=0)
    rungs: list[RungPlan]
    to_end: int = Field(ge=0)
    """Trials expected to pass every rung."""
    end: float | None
    """Where those stop, in the scheduler's unit; null: at their whole budget."""


class ClusterPlan(Strict):
    """What the plan prices the concurrency on."""

    cpus: float = Field(ge=0)
    gpus: float = Field(ge=0)
    source: str
    """`this machine`, or the Ray address asked."""


class BudgetPlan(Strict):
    """The spec's `search.budget` against the plan."""

    device_hours: float | None
    flops: float | None
    fits: bool
    """Whether the whole plan's expected spend is within every limit."""
    trials_that_fit: int = Field(ge=0)
    """The most trials (the first ones proposed) whose expected spend fits."""


class Plan(Strict):
    """The bill of a search before it runs."""

    name: str
    """The spec's name."""
    scheduler: Literal["none", "asha", "hyperband", "median", "pbt"]
    unit: Literal["epochs", "compute"]
    """What the scheduler's rungs count: epochs, or full-fidelity epoch equivalents."""
    max_t: float | None
    """The scheduler's budget in its unit (null: each trial's own length)."""
    upper_bound: bool
    """The totals are an upper bound (median stopping, PBT)."""
    num_trials: int = Field(ge=1)
    device_kind: Literal["cpu", "gpu"]
    """What each worker trains on."""
    workers_per_trial: int = Field(ge=1)
    speed_source: SpeedSource
    """Where device time comes from: measured here, a reference model's FLOPs/s measured
    here (--no-measure), or a nominal FLOPs/s for a device this machine lacks."""
    cluster: ClusterPlan
    concurrency: int = Field(ge=1)
    """Trials running at once on that cluster (as `rsearch run` would size it)."""
    trials: list[TrialPlan]
    """Every trial, in the order the sampler proposes them."""
    brackets: list[BracketPlan]
    """The scheduler's brackets and rungs."""
    total_train_flops: float = Field(ge=0)
    """Expected training FLOPs of the whole search."""
    total_eval_flops: float = Field(ge=0)
    """Expected evaluation FLOPs of the whole search."""
    total_flops: float = Field(ge=0)
    """Expected training plus evaluation FLOPs (what `search.budget.flops` limits)."""
    device_hours: dict[str, float]
    """Expected device-hours per device kind (cpu, gpu)."""
    total_device_hours: float = Field(ge=0)
    """Expected device-hours of every kind (what `search.budget.device_hours` limits)."""
    wall_clock_hours: float = Field(ge=0)
    """Expected hours from the first trial's start to the last one's end."""
    budget: BudgetPlan | None
    """The verdict on `search.budget`; null without one."""
    notes: list[str]
    """How the numbers were made."""


SCHEMA_FILE = Path(__file__).with_name("plan.schema.json")
"""The JSON Schema of `rsearch plan --format json`, shipped with the package (a test keeps it
equal to plan_schema())."""


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of a Plan as JSON (`rsearch plan --format json`)."""
    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def wall_clock_s(durations: Sequence[float], slots: int) -> float:
    """When the last trial ends, each taking the next free slot in order."""
    free = [0.0] * max(1, slots)
    for duration in durations:
        heapq.heapreplace(free, free[0] + duration)  # free[0] is the earliest free slot
    return max(free)


def plan_search(
    spec: SearchSpec,
    cluster_cpus: float,
    cluster_gpus: float,
    *,
    speed: Speed | None = None,
    cluster_source: str = "this machine",
) -> Plan:
    """Price a search before it runs.

    Args:
        spec: the validated search.
        cluster_cpus: CPUs of the cluster it would run on.
        cluster_gpus: GPUs of that cluster.
        speed: where device time comes from (default: measured on this machine, cached).
        cluster_source: what the cluster numbers describe (shown in the plan).

    Raises:
        UserError: a trial cannot run (model, data, batch split) or fit on the cluster.
    """
    from rsearch.plan.throughput import MeasuredSpeed
    from rsearch.tune.capacity import concurrency
    from rsearch.tune.cluster import ClusterResources
    from rsearch.tune.sample import sample_trials

    slots = concurrency(spec, ClusterResources(cpus=cluster_cpus, gpus=cluster_gpus))
    speed = speed or MeasuredSpeed()
    drawn = sample_trials(spec, spec.search.num_trials)
    costs = [estimate_trial(t.recipe, spec.resources, speed) for t in drawn]
    max_t = scheduler_max_t(spec)
    sched = schedule(spec, len(costs), max_t)
    expected = [expected_spend(spec, sched, i, c, max_t) for i, c in enumerate(costs)]
    total = added(expected) if expected else NOTHING
    trials = [
        TrialPlan(
            number=t.number,
            params=t.params,
            scaling=t.scaling,
            model=t.recipe.model.name,
            image_size=t.recipe.data.image_size,
            eval_image_size=t.recipe.data.eval_image_size or t.recipe.data.image_size,
            epochs=trial_end(spec, c, max_t),
            train_images_per_s=c.train_images_per_s,
            full=Amount.of(cost_to_epoch(c, trial_end(spec, c, max_t))),
            expected=Amount.of(e),
        )
        for t, c, e in zip(drawn, costs, expected, strict=True)
    ]
    kind = device_kind(spec.resources)
    sources = {c.speed_source for c in costs}
    source: SpeedSource = "nominal" if "nominal" in sources else sources.pop()
    return Plan(
        name=spec.name,
        scheduler=spec.scheduler.type,
        unit=spec.budget_unit,
        max_t=sched.max_t,
        upper_bound=sched.upper_bound,
        num_trials=len(trials),
        device_kind=kind,
        workers_per_trial=spec.resources.workers_per_trial,
        speed_source=source,
        cluster=ClusterPlan(cpus=cluster_cpus, gpus=cluster_gpus, source=cluster_source),
        concurrency=slots,
        trials=trials,
        brackets=[_bracket_plan(b) for b in sched.brackets],
        total_train_flops=total.train_flops,
        total_eval_flops=total.eval_flops,
        total_flops=total.flops,
        device_hours={kind: total.device_hours},
        total_device_hours=total.device_hours,
        wall_clock_hours=wall_clock_s([e.wall_s for e in expected], slots) / 3600.0,
        budget=_budget(spec, costs, max_t),
        notes=_notes(spec, sched, source),
    )


def cluster_resources(address: str | None) -> tuple[float, float, str]:
    """(CPUs, GPUs, where) of the Ray cluster at address, or of this machine without one.

    This machine counts as the embedded Ray of `rsearch run` would: the CPUs this process may
    run on and the CUDA GPUs torch sees. An address is joined (Ray is imported only then) and
    left again.

    Raises:
        UserError: the address cannot be reached.
    """
    if address is None:
        import os

        import torch

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return float(cpus or 1), float(torch.cuda.device_count()), "this machine"
    import ray

    from rsearch.tune.cluster import connect

    try:
        found = connect(address, log_to_driver=False)
    finally:
        ray.shutdown()
    return found.cpus, found.gpus, address


def _bracket_plan(bracket: Any) -> BracketPlan:
    return BracketPlan(
        trials=bracket.trials,
        rungs=[RungPlan(milestone=r.milestone, trials=r.trials) for r in bracket.rungs],
        to_end=bracket.to_end,
        end=bracket.end,
    )


def _budget(spec: SearchSpec, costs: Sequence[TrialCost], max_t: float) -> BudgetPlan | None:
    budget = spec.search.budget
    if budget is None:
        return None

    def fits(count: int) -> bool:
        sched = schedule(spec, count, max_t)
        spend = added(
            [expected_spend(spec, sched, i, c, max_t) for i, c in enumerate(costs[:count])]
        )
        return (budget.flops is None or spend.flops <= budget.flops) and (
            budget.device_hours is None or spend.device_hours <= budget.device_hours
        )

    # Not a bisection: under successive halving one more (cheap) trial can lower the expected
    # spend of the ones before it, so every count is tried.
    fitting = max((n for n in range(1, len(costs) + 1) if fits(n)), default=0)
    return BudgetPlan(
        device_hours=budget.device_hours,
        flops=budget.flops,
        fits=fitting == len(costs),
        trials_that_fit=fitting,
    )


def _notes(spec: SearchSpec, sched: Schedule, source: str) -> list[str]:
    notes = [SAMPLER_NOTE, SPEED_NOTES[source], WALL_NOTE]
    if sched.scheduler in ("asha", "hyperband"):
        notes.append(UNIT_NOTES[sched.unit])
    if sched.scheduler in UPPER_BOUND_NOTE:
        notes.append(UPPER_BOUND_NOTE[sched.scheduler])
    return notes
