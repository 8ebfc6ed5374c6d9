"""What the MLflow parent run says about a search's compute: totals, plan, budget, stop reason."""

from __future__ import annotations

from rsearch.rundir import ComputeRecord
from rsearch.tracking.entities import clean_key

TAG_STOP_REASON = "rsearch.stop_reason"
"""Why the search stopped proposing trials before num_trials (its compute budget)."""


def compute_on_parent(record: ComputeRecord | None) -> tuple[dict[str, float], dict[str, str]]:
    """The parent run's compute metrics and tags from the run's compute record.

    Metrics: search_total_flops, search_device_hours (and one per device kind),
    search_wall_s, the plan's search_planned_flops / search_planned_device_hours, and the
    budget's search_budget_flops / search_budget_device_hours when they are set.
    """
    if record is None:
        return {}, {}
    metrics = {
        "search_total_flops": record.total_flops,
        "search_device_hours": record.total_device_hours,
        "search_wall_s": record.wall_s,
    }
    for kind, hours in record.device_hours_by_kind.items():
        metrics[clean_key(f"search_device_hours_{kind}")] = hours
    if record.planned is not None:
        metrics["search_planned_flops"] = record.planned.total_flops
        metrics["search_planned_device_hours"] = record.planned.total_device_hours
    if record.budget_flops is not None:
        metrics["search_budget_flops"] = record.budget_flops
    if record.budget_device_hours is not None:
        metrics["search_budget_device_hours"] = record.budget_device_hours
    tags = {TAG_STOP_REASON: record.stop_reason} if record.stop_reason else {}
    return metrics, tags
