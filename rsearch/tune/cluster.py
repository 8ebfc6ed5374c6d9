"""Starting or joining Ray, and what the cluster holds."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from rsearch.errors import UserError
from rsearch.tune.quiet import RAY_LOG_LEVEL, quiet_ray

DEFAULT_DASHBOARD_PORT = 8265
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
                # The dashboard serves the State API, which Ray Train uses to release the
                # workers of a trial a scheduler stopped; without it they are never freed.
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
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
            where = address or "an embedded Ray"
            raise UserError(f"cannot connect to Ray at {where}: {e}") from None
    total = ray.cluster_resources()
    return ClusterResources(cpus=float(total.get("CPU", 0)), gpus=float(total.get("GPU", 0)))


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
