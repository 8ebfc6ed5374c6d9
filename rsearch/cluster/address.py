"""Which Ray address a command talks to, and whether that cluster is another machine."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from rsearch.errors import UserError

ADDRESS_ENV = "RAY_ADDRESS"


@dataclass(frozen=True)
class DashboardAddress:
    """The HTTP(S) address of a cluster's dashboard, which serves the Jobs API."""

    url: str
    host: str
    port: int


def dashboard_address(
    address: str | None, env: Mapping[str, str] | None = None
) -> DashboardAddress:
    """The Jobs API address from --address, else from $RAY_ADDRESS when that is a URL.

    Raises:
        UserError: When neither gives an http(s)://HOST[:PORT] URL.
    """
    env = os.environ if env is None else env
    if address is None:
        from_env = env.get(ADDRESS_ENV, "")
        if not from_env.startswith(("http://", "https://")):
            found = f" ($RAY_ADDRESS is {from_env!r}, not a URL)" if from_env else ""
            raise UserError(
                "no cluster address: pass --address http://HEAD:8265 (the dashboard's URL) "
                f"or set $RAY_ADDRESS to it{found}"
            )
        address = from_env
    return _parse_url(address)


def _parse_url(address: str) -> DashboardAddress:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"--address must be the dashboard URL http(s)://HOST:PORT "
            f"(e.g. http://head:8265), not {address!r}"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UserError(f"--address {address!r} has an invalid port") from None
    return DashboardAddress(address.rstrip("/"), parts.hostname, port)


def check_reachable(address: DashboardAddress, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an address nobody listens at (HTTP clients retry for long)."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s):
            pass
    except OSError as e:
        raise UserError(
            f"cannot reach the Ray dashboard at {address.url}: {e.strerror or e} "
            "(is the cluster up, and is this its dashboard port, 8265 by default?)"
        ) from None


def is_remote_ray_address(address: str | None) -> bool:
    """Whether a `ray.init` address may put workers on other machines than this one.

    None (an embedded Ray) and `auto` (the cluster this process runs in, e.g. inside a
    submitted job whose storage was checked at submission) count as local, as do loopback
    hosts and this machine's own name.
    """
    if address is None or address in ("auto", "local"):
        return False
    hostport = address.split("://", 1)[-1].rstrip("/")
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    host = host.strip("[]")
    if host in ("localhost", socket.gethostname()):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class HostScope(str, Enum):
    """How far a token sent to a host travels: this machine, a private network, anywhere."""

    LOOPBACK = "loopback"
    PRIVATE = "private"
    PUBLIC = "public"


def host_scope(host: str) -> HostScope:
    """Where host is: every address it resolves to must be loopback (or private) to count.

    A name that does not resolve counts as public: nothing vouches for where it leads.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        # An IPv6 address may carry its interface (fe80::1%eth0), which ip_address refuses.
        ips = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    except (OSError, ValueError):
        return HostScope.PUBLIC
    if ips and all(ip.is_loopback for ip in ips):
        return HostScope.LOOPBACK
    if ips and all(ip.is_private or ip.is_loopback for ip in ips):
        return HostScope.PRIVATE
    return HostScope.PUBLIC
