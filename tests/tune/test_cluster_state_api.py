"""The embedded Ray's processes reach its own State API while other Rays run on the machine.

Ray Train frees a stopped trial's workers from an actor that asks the State API whether the
trial's controller is alive. Left to itself, that actor looks for "the" Ray instance on the
machine; with two searches (or a search and any other Ray) running at once it fails, the
workers are never freed, and the search stalls waiting for CPUs.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from rsearch.tune.cluster import connect

pytestmark = pytest.mark.slow


@pytest.fixture
def another_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A second Ray instance on this machine, as another user's search would be."""
    import ray
    from ray._common.utils import reset_ray_address
    from ray.cluster_utils import Cluster

    # Ray temp dirs of this test's own (short: Ray's socket paths live under them).
    temp = tempfile.mkdtemp(prefix="rsapi-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", temp)
    other = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    # It registered itself as the machine's current cluster; a plain ray.init() would join it.
    reset_ray_address()
    try:
        yield other
    finally:
        ray.shutdown()
        other.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_workers_reach_this_rays_state_api(another_ray: Any) -> None:
    import ray

    connect(None, log_to_driver=False)
    assert ray.get_runtime_context().gcs_address != another_ray.address

    @ray.remote(num_cpus=0)
    class Probe:
        def actor_state(self, actor_id: str) -> str | None:
            from ray.util.state import get_actor

            actor = get_actor(actor_id, timeout=30)
            return None if actor is None else str(actor.state)

    probe = Probe.remote()  # type: ignore[attr-defined]
    actor_id = probe._actor_id.hex()
    assert ray.get(probe.actor_state.remote(actor_id), timeout=120) == "ALIVE"
