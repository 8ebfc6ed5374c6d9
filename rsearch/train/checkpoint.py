"""Checkpoints: atomic writes, random-generator states, and reading the weights they hold.

A checkpoint is a torch.save'd dict holding only tensors and plain Python values, so it loads
with torch.load(weights_only=True): opening one never runs code.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsearch.train.errors import TrainInputError

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of the checkpoint inside a checkpoint directory."""

FORMAT = "rsearch-checkpoint"
"""Value of the 'format' key that marks an rsearch checkpoint."""

_PREFIXES = ("module.", "_orig_mod.")
"""Wrapper prefixes (DDP, torch.compile) stripped from state-dict keys of other tools."""


def checkpoint_file(directory: str | Path) -> Path:
    """The checkpoint file inside a checkpoint directory."""
    return Path(directory) / CHECKPOINT_NAME


def save_atomically(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside path, then rename it over path.

    A reader (or a run restarted after a crash) sees the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_file(path: str | Path) -> Any:
    """torch.load a weights or checkpoint file onto the CPU, safely.

    Raises:
        TrainInputError: the file is missing or is not a loadable torch file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise TrainInputError(f"weights file {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise TrainInputError(f"cannot load {str(path)!r} as torch weights: {e}") from e


def capture_rng() -> dict[str, Any]:
    """This process's random-generator states (python, numpy, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store a tensor.
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back generator states made by capture_rng."""
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    # random.setstate insists on tuples; a round trip through some loaders gives lists.
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def model_state(loaded: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict inside a loaded file: an rsearch checkpoint or a bare state dict."""
    if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
        loaded = loaded["model"]
    elif isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # the common {'state_dict': ...} wrapping
    if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
        raise TrainInputError(f"{str(path)!r} holds neither a state dict nor an rsearch checkpoint")
    return {_strip_prefixes(k): v for k, v in loaded.items()}


def _strip_prefixes(key: str) -> str:
    for prefix in _PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key
