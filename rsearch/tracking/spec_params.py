"""What a search spec contributes to its parent run: settings as params, the resolved spec."""

from __future__ import annotations

from typing import Any

from rsearch.spec.search import SearchSpec


def search_settings(spec: SearchSpec) -> dict[str, Any]:
    """The settings of a search, nested, for `SearchRecorder.start_search(settings=...)`.

    Objectives with their resolved directions, sampler, scheduler, trial budget, resources,
    the searched space and where results go; the base recipe is left out (each child run
    carries its trial's whole recipe).
    """
    data = spec.model_dump(mode="json", exclude={"name", "description", "base", "objective"})
    objectives = {o.metric: o.direction for o in spec.objective}
    return {"objective": objectives, "budget_epochs": spec.budget_epochs, **data}


def resolved_spec(spec: SearchSpec) -> dict[str, Any]:
    """The resolved spec as plain data, for `SearchRecorder.start_search(spec_resolved=...)`."""
    return spec.model_dump(mode="json")
