"""The bill of a search before it runs: `rsearch plan`, and the cost estimates a budget needs.

Imports torch and timm only inside the functions that count FLOPs or measure speed; imports no
Ray. See docs/recipes.md ("Planning a search") for the rules of the estimate.
"""

from rsearch.plan.bill import Plan, plan_search
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
    "Plan",
    "Speed",
    "Spend",
    "ThroughputCache",
    "TrialCost",
    "admission_cost",
    "cost_to_epoch",
    "epochs_to_reach",
    "estimate_trial",
    "plan_search",
    "scheduler_max_t",
    "trial_end",
]
