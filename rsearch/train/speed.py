"""Inference speed measured once per architecture and hardware, with the node quiet, and cached.

The timing itself is rsearch.train.measure's (its docstring states the protocol); this module
decides when it runs, so that every trial of one architecture reports the same numbers.

- **Key.** A measurement is good for one SpeedKey: the architecture (the model fields that
  shape the network, rsearch.spec.model_section.ARCHITECTURE) and its class count, the evaluation
  resolution, the inference batch, the autocast dtype, the memory layout, the device kind
  ('cpu' or the GPU's name) and the CPU threads torch uses.
- **Two caches** (rsearch.cache.JsonCache files, replaced atomically): the run's own
  (`fit(speed_cache=...)`, consulted first, keyed as above) and the user's shared one,
  `speed.json` under rsearch's cache directory, keyed additionally by the hardware (the CPU's
  model name) and the torch version, so a later search on the same machine reuses it. A hit in
  the shared cache is copied into the run's; a new measurement is written to both.
- **A per-node lock.** An exclusive `fcntl.flock` on `speed.lock` in a node-local directory
  (`<temp dir>/rsearch-<uid>/`) is held while the caches are checked and the measurement runs:
  two trials wanting the same key measure once, the second finding the first's result.
- **Quiet.** While it measures, the lock's holder keeps a flag file (`speed.quiet`, holding its
  pid) beside the lock. Every trial on the node checks for it at each training and evaluation
  step (one `os.path.exists`) and, seeing it, waits for a shared lock on `speed.lock`, which
  the kernel grants once the measurer releases its lock or dies. A flag found while holding
  the shared lock cannot be live (a live flag means the exclusive lock is held), so it is a
  dead measurer's and is removed. The time waited is left out of the epoch's timing metrics.

A node is what shares the temporary directory; nodes do not share a lock, so two nodes may
measure one key once each, and the run's cache keeps the later entry.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from rsearch.cache import JsonCache
from rsearch.machine import device_name, node_dir
from rsearch.spec.model_section import architecture
from rsearch.train.measure import INFER_BATCH, inference_speed
from rsearch.train.quant import quant_key
from rsearch.train.runtime import synchronize
from rsearch.train.session import Session

CACHE_NAME = "speed"
"""The shared cache: `speed.json` under rsearch's cache directory."""

LOCK_NAME = "speed.lock"
QUIET_NAME = "speed.quiet"

SPEED_METRICS = (
    "infer_images_per_s",
    "infer_latency_ms",
    "infer_latency_ms_batch",
    "infer_spread_pct",
    "infer_latency_spread_pct",
)
"""What one measurement gives (rsearch.train.measure.inference_speed)."""

Source = Literal["run", "shared", "measured"]


@dataclass(frozen=True)
class SpeedKey:
    """Everything an inference speed depends on, but the hardware."""

    model: str
    """The architecture (rsearch.spec.model_section.architecture), as JSON."""
    num_classes: int
    image_size: int
    batch: int
    dtype: str
    """The autocast dtype ('float32' without autocast)."""
    channels_last: bool
    device_kind: str
    """'cpu' or the CUDA device's name."""
    threads: int

    def text(self) -> str:
        """The run cache's key."""
        return json.dumps(asdict(self), sort_keys=True)

    def shared_text(self) -> str:
        """The shared cache's key: text() with the hardware and the torch version."""
        return json.dumps({**asdict(self), **machine()}, sort_keys=True)


def machine() -> dict[str, str]:
    """The hardware and software a measurement was made on, beyond its key's device kind."""
    return {"hardware": device_name("cpu"), "torch": torch.__version__}


def speed_key(session: Session) -> SpeedKey:
    """The key of the session's model measured as it is now (rank 0's device and threads)."""
    return SpeedKey(
        model=architecture(session.recipe.model) + quant_key(session.recipe.quant),
        num_classes=session.data.num_classes,
        image_size=session.eval_size,
        batch=INFER_BATCH,
        dtype=str(session.dtype or torch.float32).removeprefix("torch."),
        channels_last=session.recipe.channels_last,
        device_kind=session.device_kind,
        threads=torch.get_num_threads(),
    )


def measured_speed(session: Session, run_cache: str | Path | None) -> dict[str, float]:
    """The speed metrics of the session's model: cached, or measured now (see module doc)."""
    key = speed_key(session)

    def measure() -> dict[str, float]:
        model, device, dtype = session.model, session.device, session.dtype
        return inference_speed(model, key.image_size, device, dtype, key.channels_last, key.batch)

    return cached_speed(key, measure, run_cache).metrics


@dataclass(frozen=True)
class Found:
    """A speed entry and where it came from."""

    entry: dict[str, Any]
    """metrics, started_at and ended_at (Unix times of the measurement), pid, host, hardware."""
    source: Source

    @property
    def metrics(self) -> dict[str, float]:
        """The speed metrics, by name."""
        return dict(self.entry["metrics"])


def cached_speed(
    key: SpeedKey,
    measure: Callable[[], Mapping[str, float]],
    run_cache: str | Path | None,
    directory: Path | None = None,
) -> Found:
    """The entry of key from the run cache, else the shared one, else measured under the lock.

    Args:
        key: what is measured.
        measure: times the model (called with the node's lock held and its quiet flag up).
        run_cache: the run's cache file; None consults the shared cache only.
        directory: the node-local directory of the lock and flag (default node_dir()).
    """
    run = JsonCache(CACHE_NAME, Path(run_cache)) if run_cache is not None else None
    found = _lookup(run, key.text())
    if found is not None:  # no lock needed to read: the file is replaced atomically
        return Found(found, "run")
    directory = directory or node_dir()
    with _exclusive(directory):
        found = _lookup(run, key.text())
        if found is not None:  # measured by another trial while this one waited
            return Found(found, "run")
        shared = JsonCache(CACHE_NAME)
        found = _lookup(shared, key.shared_text())
        source: Source = "shared"
        if found is None:
            with _quiet(directory):
                found = _measured(measure)
            shared.put(key.shared_text(), found)
            source = "measured"
        if run is not None:  # written under the lock: no writer on this node is lost
            run.put(key.text(), found)
    return Found(found, source)


def _lookup(cache: JsonCache | None, key: str) -> dict[str, Any] | None:
    entry = cache.get(key) if cache is not None else None
    if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
        return None  # absent, or not an entry this version wrote
    metrics = entry["metrics"]
    if set(metrics) != set(SPEED_METRICS) or not all(
        isinstance(v, int | float) for v in metrics.values()
    ):
        return None
    return entry


def _measured(measure: Callable[[], Mapping[str, float]]) -> dict[str, Any]:
    started = time.time()
    metrics = {name: float(value) for name, value in measure().items()}
    return {
        "metrics": metrics,
        "started_at": started,
        "ended_at": time.time(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        **machine(),
    }


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        f = (directory / LOCK_NAME).open("a")
    except OSError as e:  # a trial at its last epoch is not worth losing over a lock file
        warnings.warn(f"measuring inference speed without the node lock: {e}", stacklevel=3)
        f = None
    if f is None:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released on close, and by the kernel if this process dies
        yield


@contextmanager
def _quiet(directory: Path) -> Iterator[None]:
    """The flag that pauses the node's other trials; only the exclusive lock's holder sets it."""
    flag = directory / QUIET_NAME
    try:
        flag.write_text(str(os.getpid()))
        raised = True
    except OSError:  # no node directory: _exclusive has warned already
        raised = False
    try:
        yield
    finally:
        if raised:
            flag.unlink(missing_ok=True)


def wait_for_quiet(directory: Path) -> None:
    """Return once no measurement holds the node's lock; remove a dead measurer's flag."""
    with (directory / LOCK_NAME).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        # Holding a shared lock, no one holds the exclusive one: a flag still here is stale.
        (directory / QUIET_NAME).unlink(missing_ok=True)


class Pauses:
    """Waits at step boundaries while a measurement runs on the node; counts the seconds."""

    def __init__(self, device: torch.device, directory: Path | None = None):
        """Pauses of a process training on device (synchronised before it waits)."""
        self.directory = directory or node_dir()
        self.flag = str(self.directory / QUIET_NAME)
        self.device = device
        self.seconds = 0.0
        """Seconds waited so far."""

    def check(self) -> None:
        """Wait while the node's quiet flag is up (costs one os.path.exists when it is not)."""
        if not os.path.exists(self.flag):
            return
        synchronize(self.device)  # work already queued on a GPU is training time, not a pause
        start = time.perf_counter()
        wait_for_quiet(self.directory)
        self.seconds += time.perf_counter() - start
