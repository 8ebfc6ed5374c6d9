"""What a finished search may not leave behind on its Ray cluster."""

from __future__ import annotations

import time

SEARCH_ACTORS = {
    "TrainController",
    "RayTrainWorker",
    "SynchronizationActor",
    "TrialBoard",
    "ResourceTrainable",
    "TrialDriver",
    "ImplicitFunc",
}
"""Class names of the actors a search starts: trial drivers, their boards and Train runs."""


def leftovers() -> tuple[list[str], list[str]]:
    """(search actors still alive, placement groups not removed) on the connected cluster."""
    import ray
    from ray.util.state import list_actors

    alive = [a.class_name for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000)]
    table = ray.util.placement_group_table()
    live_groups = [gid for gid, group in table.items() if group["state"] != "REMOVED"]
    return [name for name in alive if name in SEARCH_ACTORS], live_groups


def assert_nothing_left(timeout_s: float = 60.0) -> None:
    """Wait (actors end asynchronously) until no search actor or placement group is left."""
    deadline = time.monotonic() + timeout_s
    while True:
        actors, groups = leftovers()
        if not actors and not groups:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left running: actors {actors}, placement groups {groups}")
        time.sleep(1)
