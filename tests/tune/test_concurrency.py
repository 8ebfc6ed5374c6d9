"""How many trials run at once: sized to the cluster, or to the spec when it autoscales."""

from __future__ import annotations

import pytest

from rsearch.errors import UserError
from rsearch.spec import SpecError, parse_spec_text
from rsearch.spec.search import SearchSpec
from rsearch.tune.cluster import ClusterResources
from rsearch.tune.driver import concurrency

SPEC = """\
name: c
objective: {{metric: val_top1}}
search: {{num_trials: 16{concurrent}}}
resources: {{workers_per_trial: 2, cpus_per_worker: 2, gpus_per_worker: {gpus}{autoscaling}}}
"""


def _spec(
    gpus: float = 0, max_concurrent: int | None = None, autoscaling: bool = False
) -> SearchSpec:
    return parse_spec_text(
        SPEC.format(
            gpus=gpus,
            concurrent=f", max_concurrent: {max_concurrent}" if max_concurrent else "",
            autoscaling=", autoscaling: true" if autoscaling else "",
        )
    )


def test_sized_to_what_the_cluster_holds() -> None:
    assert concurrency(_spec(), ClusterResources(cpus=10, gpus=0)) == 2
    assert concurrency(_spec(gpus=1), ClusterResources(cpus=64, gpus=6)) == 3
    assert concurrency(_spec(max_concurrent=1), ClusterResources(cpus=64, gpus=0)) == 1


def test_a_trial_larger_than_the_cluster_fails_fast() -> None:
    with pytest.raises(UserError, match="a trial needs 2 GPUs but the cluster has 0"):
        concurrency(_spec(gpus=1), ClusterResources(cpus=8, gpus=0))


def test_an_autoscaling_cluster_runs_what_the_spec_asks_for() -> None:
    # A GPU cluster whose GPU workers start at zero: trials wait for the nodes they ask for.
    spec = _spec(gpus=1, max_concurrent=4, autoscaling=True)
    assert concurrency(spec, ClusterResources(cpus=2, gpus=0)) == 4


def test_autoscaling_needs_a_bound_on_concurrent_trials() -> None:
    with pytest.raises(SpecError) as e:
        _spec(autoscaling=True)
    assert any(
        p.loc == ("resources", "autoscaling") and "search.max_concurrent" in p.message
        for p in e.value.problems
    )
