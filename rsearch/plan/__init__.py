"""The cost of a search before it runs: the estimates a compute budget needs.

Imports torch and timm only inside the functions that count FLOPs or measure speed; imports no
Ray.
"""

from rsearch.plan.cost import (
    EpochCost,
    Spend,
    TrialCost,
    cost_to_epoch,
    epochs_to_reach,
    estimate_trial,
)
from rsearch.plan.rungs import Admission, admission_cost, scheduler_max_t, trial_end
from rsearch.plan.throughput import FlopsRateSpeed, MeasuredSpeed, Speed, ThroughputCache

__all__ = [
    "Admission",
    "EpochCost",
    "FlopsRateSpeed",
    "MeasuredSpeed",
    "Speed",
    "Spend",
    "ThroughputCache",
    "TrialCost",
    "admission_cost",
    "cost_to_epoch",
    "epochs_to_reach",
    "estimate_trial",
    "scheduler_max_t",
    "trial_end",
]
