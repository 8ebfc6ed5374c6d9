"""Starting or joining Ray, and what the cluster holds."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rsearch.errors import UserError
from rsearch.machine import node_dir
from rsearch.tune.quiet import RAY_LOG_LEVEL, quiet_ray

DEFAULT_DASHBOARD_PORT = 8265
START_LOCK = "ray-start.lock"
"""Held in the node directory while an embedded Ray picks its dashboard port and starts."""
DASHBOARD_WAIT_S = 15.0
"""How long a start waits for its dashboard to listen before the next start may pick a port."""
STATE_API_VARIABLE = "RAY_API_SERVER_ADDRESS"
"""Where Ray's State API clients (in any Ray process) find the dashboard."""


@dataclass(frozen=True)
class ClusterResources:
    """CPUs and GPUs the Ray cluster offers in all."""

    cpus: float
    gpus: float


def connect(address: str | None = None, log_to_driver: bool = True) -> ClusterResources:
    """Join the Ray cluster at address, or start an embedded one sized to this machine.

    Ray's start-up chatter and Tune's banner stay off the terminal (rsearch.tune.quiet).

    Raises:
        UserError: When the address cannot be reached.
    """
    import ray

    if address and address != "auto":
        _check_reachable(address)
    if not ray.is_initialized():
        quiet_ray()
        # Train V2 is the only Train API rsearch speaks; pin it for older Ray defaults too.
        os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
        try:
            if address:
                ray.init(address=address, log_to_driver=log_to_driver, logging_level=RAY_LOG_LEVEL)
            else:
                with _one_start_at_a_time():
                    _start_embedded(log_to_driver)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
            where = address or "an embedded Ray"
            raise UserError(f"cannot connect to Ray at {where}: {e}") from None
    total = ray.cluster_resources()
    return ClusterResources(cpus=float(total.get("CPU", 0)), gpus=float(total.get("GPU", 0)))


@contextmanager
def _one_start_at_a_time() -> Iterator[None]:
    """Serialise embedded Ray starts on this machine.

    A free dashboard port is found before Ray binds it: two searches started at once would
    both pick 8265 and the second would die in `ray.init`. Under this lock the second picks
    its port once the first's dashboard holds 8265. The kernel drops the lock if the holder dies.
    """
    directory = node_dir()
    directory.mkdir(mode=0o700, exist_ok=True)
    with (directory / START_LOCK).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _start_embedded(log_to_driver: bool) -> None:
    """Start a new Ray on this machine, its dashboard (State API) on 127.0.0.1."""
    import ray

    # The dashboard serves the State API, which Ray Train uses to release the workers of a
    # trial a scheduler stopped; without it they are never freed.
    port = _dashboard_port()
    ray.init(
        # "local" always starts a new Ray: a bare ray.init() would join a cluster
        # named by $RAY_ADDRESS or a `ray start` on this machine instead.
        address="local",
        num_cpus=_local_cpus(),
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=port,
        # Ray Train's actor that frees those workers finds the State API through
        # this variable; without it, it looks for "the" Ray on this machine and
        # dies when there are several (two searches at once), and trials stall.
        runtime_env={"env_vars": {STATE_API_VARIABLE: f"http://127.0.0.1:{port}"}},
        log_to_driver=log_to_driver,
        logging_level=RAY_LOG_LEVEL,
    )
    _wait_listening(port, DASHBOARD_WAIT_S)  # the next start must see the port taken


def _wait_listening(port: int, timeout_s: float) -> None:
    """Return once something accepts connections on 127.0.0.1:port, or after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def _dashboard_port() -> int:
    """Ray's usual dashboard port when it is free, else any free port."""
    for port in (DEFAULT_DASHBOARD_PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise AssertionError("binding port 0 cannot fail")  # pragma: no cover


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity API
        return os.cpu_count() or 1


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nobody listens at (ray.init would retry for minutes)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise UserError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None
