"""How many trials a cluster runs at once: pure arithmetic on the spec, importing no Ray.

The driver sizes a search with it and `rsearch plan` prices the same concurrency.
"""

from __future__ import annotations

import math

from rsearch.errors import UserError
from rsearch.spec.search import SearchSpec
from rsearch.tune.cluster import ClusterResources


def trial_cpus(spec: SearchSpec) -> float:
    """CPUs one trial holds (all its workers)."""
    return spec.resources.workers_per_trial * spec.resources.cpus_per_worker


def concurrency(spec: SearchSpec, cluster: ClusterResources, trials: int | None = None) -> int:
    """Trials that can run at once without any waiting for workers it cannot get.

    On an autoscaling cluster the nodes come when trials ask for them, so only the spec
    bounds concurrency and a trial larger than today's cluster waits for its nodes.

    Args:
        spec: The search.
        cluster: What the cluster holds.
        trials: Trials the Tune experiment runs (an extension's); default num_trials.

    Raises:
        UserError: When a single trial needs more than the whole cluster has.
    """
    res = spec.resources
    trials = trials or spec.search.num_trials
    limits = [trials, spec.search.max_concurrent or trials]
    if res.autoscaling:
        return min(limits)
    cpus = trial_cpus(spec)
    if cpus > cluster.cpus + 1e-9:
        raise UserError(
            f"a trial needs {cpus:g} CPUs ({res.workers_per_trial} workers x "
            f"{res.cpus_per_worker:g}) but the cluster has {cluster.cpus:g}; lower "
            "resources.workers_per_trial or resources.cpus_per_worker"
        )
    limits.append(math.floor(cluster.cpus / cpus + 1e-9))
    if res.gpus_per_worker > 0:
        gpus = res.workers_per_trial * res.gpus_per_worker
        if gpus > cluster.gpus + 1e-9:
            raise UserError(
                f"a trial needs {gpus:g} GPUs but the cluster has {cluster.gpus:g}; lower "
                "resources.gpus_per_worker or resources.workers_per_trial"
            )
        limits.append(math.floor(cluster.gpus / gpus + 1e-9))
    return max(1, min(limits))
