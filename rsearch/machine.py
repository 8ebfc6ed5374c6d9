"""The machine a number was measured on, named: a measured speed is only good for its device."""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Literal

DeviceKind = Literal["cpu", "gpu"]


def node_dir() -> Path:
    """This user's node-local directory of locks and flags (`<temp dir>/rsearch-<uid>`)."""
    return Path(tempfile.gettempdir()) / f"rsearch-{os.getuid()}"


def device_name(kind: DeviceKind) -> str:
    """This machine's device of a kind, named (a cache entry is only good for that device)."""
    if kind == "gpu":
        import torch

        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
        return "cuda:absent"
    return f"cpu:{_cpu_name()}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
