"""A real Ray head node for the integration tests: own ports, own temp dir, own token.

`ray start --head --block` runs in its own session, so the test can end exactly this cluster
by signalling its process group (a bare `ray stop` would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WORKER_PORTS = 60
"""Ports reserved for the head's workers and job drivers."""


@dataclass(frozen=True)
class Head:
    """A running head node."""

    url: str
    """The dashboard (Jobs API) URL."""
    token: str = field(repr=False)
    temp_dir: Path
    gcs_address: str
    """HOST:PORT a driver joins with ray.init(address=...)."""


def free_port() -> int:
    """A port free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_range(size: int) -> int:
    """The first port of `size` consecutive ports that are all free now."""
    for _ in range(50):
        base = random.randrange(20000, 32000)
        if all(_is_free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError("no free port range for Ray workers")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _distinct_free_ports(count: int) -> list[int]:
    """`count` different ports free right now: all held open while chosen, as the kernel may
    hand the same port out again once a probe's socket closes (Ray refuses a port twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def _ray_args(temp_dir: Path) -> list[str]:
    base = _free_range(WORKER_PORTS)
    flags = (
        "--port",
        "--dashboard-port",
        "--ray-client-server-port",
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    ports = dict(zip(flags, _distinct_free_ports(len(flags)), strict=True))
    ports |= {"--min-worker-port": base, "--max-worker-port": base + WORKER_PORTS - 1}
    args = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block"]
    args += ["--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
    args += ["--num-cpus", "2", "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    for flag, port in ports.items():
        args += [flag, str(port)]
    return args


def _head_env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    # The token lives in this process's environment only; ~/.ray/auth_token is not touched.
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    # Jobs run `python -m rsearch.cli`: the python of this venv must come first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def ray_head(timeout_s: float = 120.0) -> Iterator[Head]:
    """Start a token-protected head on free ports; stop exactly it afterwards."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rsj", dir="/tmp"))
    token = secrets.token_hex(16)
    args = _ray_args(temp_dir)
    url = f"http://127.0.0.1:{args[args.index('--dashboard-port') + 1]}"
    with open(temp_dir / "head.log", "wb") as log:
        proc = subprocess.Popen(
            args, env=_head_env(token), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(url, token, proc, timeout_s, temp_dir / "head.log")
        yield Head(url, token, temp_dir, f"127.0.0.1:{args[args.index('--port') + 1]}")
    finally:
        _stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_ready(
    url: str, token: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        f"{url}/api/version", headers={"Authorization": f"Bearer {token}"}
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(request, timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise RuntimeError(f"the Ray dashboard at {url} did not answer in {timeout_s:.0f} s")


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the head's process group, SIGKILL whatever of it outlives the grace period.

    `ray start --block` and the raylet outlive a SIGTERM here, so the group is polled and
    then killed; the raylet's workers exit when their raylet is gone.
    """
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(pgid):
        proc.poll()  # reap `ray start`, or its zombie keeps the group alive
        time.sleep(0.5)
    _signal_group(pgid, signal.SIGKILL)
    proc.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
