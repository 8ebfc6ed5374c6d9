"""SearchSpec: one YAML file describing a whole search."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from rsearch.spec.base import Strict
from rsearch.spec.metric_names import check_objective_metric, natural_direction
from rsearch.spec.params import Param
from rsearch.spec.recipe import Recipe
from rsearch.spec.scaling import Constraints, NoScaling, Strategy

Algorithm = Literal["tpe", "cmaes", "gp", "random", "grid", "nsga2"]
MULTI_OBJECTIVE_ALGORITHMS: frozenset[str] = frozenset({"tpe", "gp", "random", "grid", "nsga2"})
"""Optuna samplers that accept several objectives (CMA-ES handles one)."""


class Objective(Strict):
    """One metric to optimise and its direction."""

    metric: Annotated[str, AfterValidator(check_objective_metric)]
    """A metric the training core reports (rsearch.spec.metrics), e.g. val_top1."""
    mode: Literal["max", "min"] | None = None
    """max or min; defaults to the metric's natural direction (max for accuracy, min for loss)."""

    @property
    def direction(self) -> Literal["max", "min"]:
        """The mode, or the metric's natural one when the spec left it out."""
        return self.mode or natural_direction(self.metric)


def _one_as_list(objective: Any) -> Any:
    # A single mapping is the common case; every objective is stored in a list.
    return [objective] if isinstance(objective, dict) else objective


def _distinct_metrics(objective: list[Objective]) -> list[Objective]:
    metrics = [o.metric for o in objective]
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"objective repeats a metric: {metrics}")
    return objective


Objectives = Annotated[
    list[Objective],
    BeforeValidator(_one_as_list),
    AfterValidator(_distinct_metrics),
    Field(min_length=1),
]


class Budget(Strict):
    """The compute a whole search may spend (admission control, not a wall-clock kill).

    Before a proposal runs its cost is estimated; it is admitted only if it fits what remains.
    """

    device_hours: float | None = Field(None, gt=0.0)
    """Device-hours (one CPU worker or one GPU for an hour), summed over every trial's workers."""
    flops: float | None = Field(None, gt=0.0)
    """Training plus evaluation FLOPs (2 per multiply-add), summed over every trial."""

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.device_hours is None and self.flops is None:
            raise ValueError("a budget needs device_hours, flops, or both")
        return self


class SearchConfig(Strict):
    """How trials are proposed."""

    algorithm: Algorithm = "tpe"
    """Optuna sampler: tpe, cmaes, gp, random, grid, or nsga2 (multi-objective)."""
    num_trials: int = Field(8, ge=1, le=100_000)
    """Trials to run in all (warm-start trials included)."""
    max_concurrent: int | None = Field(None, ge=1)
    """Upper bound on trials running at once; by default what the cluster can hold."""
    seed: int = 0
    """Sampler seed: the same spec proposes the same trials."""
    warm_start: list[dict[str, Any]] = Field(default_factory=list)
    """Known recipes to evaluate first, each a mapping of space paths to values."""
    max_failures: int = Field(0, ge=0)
    """Retries of a failed trial, each from its last checkpoint."""
    budget: Budget | None = None
    """A compute limit for the whole search (device-hours and/or FLOPs); none by default."""


class NoScheduler(Strict):
    """Every trial runs its full budget."""

    type: Literal["none"]


BudgetUnit = Literal["epochs", "compute"]
"""What a successive-halving rung counts: epochs, or compute in full-fidelity epoch
equivalents (an epoch at half the resolution counts about a quarter; see data.progressive)."""


class AshaScheduler(Strict):
    """Asynchronous successive halving (Ray's ASHAScheduler)."""

    type: Literal["asha"]
    unit: BudgetUnit = "epochs"
    """Rungs in epochs, or in compute (full-fidelity epoch equivalents; the `fidelity` metric)."""
    grace_period: float = Field(1, gt=0)
    """Budget (in `unit`) every trial runs before it can be stopped."""
    reduction_factor: float = Field(3.0, gt=1.0)
    """Keep 1/reduction_factor of the trials at each rung."""
    max_t: float | None = Field(None, gt=0)
    """Budget in `unit`; defaults to the base recipe's whole training (its epochs, or their
    compute in full-fidelity epoch equivalents)."""
    brackets: int = Field(1, ge=1)
    """Brackets of different aggressiveness."""


class HyperbandScheduler(Strict):
    """Synchronous Hyperband (Ray's HyperBandScheduler)."""

    type: Literal["hyperband"]
    unit: BudgetUnit = "epochs"
    """Rungs in epochs, or in compute (full-fidelity epoch equivalents; the `fidelity` metric)."""
    reduction_factor: float = Field(3.0, gt=1.0)
    """Keep 1/reduction_factor of the trials at each rung."""
    max_t: float | None = Field(None, gt=0)
    """Budget in `unit`; defaults to the base recipe's whole training."""


class MedianScheduler(Strict):
    """Median stopping rule (Ray's MedianStoppingRule)."""

    type: Literal["median"]
    grace_period: int = Field(1, ge=1)
    """Epochs every trial runs before it can be stopped."""
    min_samples_required: int = Field(3, ge=1)
    """Trials that must have reached an epoch before the median is trusted."""


class PbtScheduler(Strict):
    """Population-based training: exploit good trials' checkpoints, explore the space."""

    type: Literal["pbt"]
    perturbation_interval: int = Field(2, ge=1)
    """Epochs between exploit/explore steps."""
    quantile_fraction: float = Field(0.25, gt=0.0, le=0.5)
    """Bottom fraction that copies the top fraction."""
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)
    """Chance of resampling a value from the space instead of perturbing it."""
    synchronous: bool = False
    """Pause trials at each interval until the whole population gets there (small populations
    whose trials run at different speeds; every pause restarts the trial from its checkpoint)."""


Scheduler = Annotated[
    NoScheduler | AshaScheduler | HyperbandScheduler | MedianScheduler | PbtScheduler,
    Field(discriminator="type"),
]


class Resources(Strict):
    """What one trial holds: its Ray Train workers and their CPUs and GPUs."""

    workers_per_trial: int = Field(1, ge=1)
    """Ray Train workers (DDP ranks) per trial."""
    cpus_per_worker: float = Field(1.0, gt=0.0)
    """CPUs each worker holds (torch uses that many threads)."""
    gpus_per_worker: float = Field(0.0, ge=0.0)
    """GPUs each worker holds; 0 trains on the CPU."""
    autoscaling: bool = False
    """The cluster adds nodes on demand (Ray autoscaler, KubeRay): trials run
    `search.max_concurrent` at a time and wait for nodes, instead of being sized to what the
    cluster holds when the search starts."""


class Tracking(Strict):
    """Where the search is recorded in MLflow."""

    uri: str | None = None
    """MLflow tracking URI; default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here."""
    experiment: str | None = None
    """MLflow experiment; defaults to the spec's name."""
    checkpoints: Literal["none", "best", "all"] = "best"
    """Which trials' final checkpoints are logged as MLflow artifacts."""


class SearchSpec(Strict):
    """A whole search: objective, sampler, scheduler, resources, base recipe and space."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    """Short identifier (letters, digits, _ . -): names the run directory and MLflow runs."""
    description: str = ""
    """What question the search answers."""
    objective: Objectives
    """One objective, or a list for a multi-objective (Pareto) search."""
    search: SearchConfig = Field(default_factory=SearchConfig)
    scheduler: Scheduler = Field(default_factory=lambda: NoScheduler(type="none"))
    resources: Resources = Field(default_factory=Resources)
    base: Recipe = Field(default_factory=Recipe)
    """The recipe every trial starts from; `extends: FILE` merges a recipe file under it."""
    space: dict[str, Param] = Field(default_factory=dict)
    """Dotted Recipe paths (optim.lr) mapped to the parameter searched there."""
    scaling: Strategy = Field(default_factory=lambda: NoScaling(type="none"))
    """A scaling strategy (compound, depth_first, shrink; default none) that sets each trial's
    model size and resolution from its own searched or fixed parameters."""
    constraints: Constraints = Field(default_factory=Constraints)
    """Budget of a trial's model (max_gflops, max_params_m): over budget is never trained."""
    tracking: Tracking = Field(default_factory=Tracking)
    storage: str = "./rsearch-runs"
    """Where Ray keeps results: a local directory, a shared mount, s3:// or gs://."""

    @property
    def multi_objective(self) -> bool:
        """Whether this is a Pareto search over several metrics."""
        return len(self.objective) > 1

    @property
    def budget_unit(self) -> BudgetUnit:
        """What the scheduler's rungs count: epochs or compute."""
        unit: BudgetUnit = getattr(self.scheduler, "unit", "epochs")
        return unit

    @property
    def budget_epochs(self) -> int:
        """The most epochs a trial may train (the scheduler's max_t or the base recipe's)."""
        max_t = getattr(self.scheduler, "max_t", None)
        if max_t is None or self.budget_unit == "compute":
            return self.base.epochs
        return math.ceil(max_t)
