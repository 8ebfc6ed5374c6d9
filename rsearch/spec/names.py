"""timm's component names, checked without importing timm on the hot path.

Importing timm costs seconds (it imports torch), which would make `rsearch validate` slow.
The names only change with the installed timm version, so they are listed once per version
and cached as JSON under $RSEARCH_CACHE, else $XDG_CACHE_HOME/rsearch (~/.cache/rsearch).
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class TimmNames:
    """The model and optimizer names one timm version offers."""

    version: str
    models: frozenset[str]
    optimizers: frozenset[str]


def cache_dir() -> Path:
    """Directory of rsearch's per-user caches: $RSEARCH_CACHE, else the XDG cache home's."""
    if os.environ.get("RSEARCH_CACHE"):
        return Path(os.environ["RSEARCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rsearch"


def _list_from_timm() -> tuple[list[str], list[str]]:
    import timm  # deferred: seconds to import, needed once per timm version
    import timm.optim

    models = [str(m) for m in timm.list_models()]
    optimizers = [str(o) for o in timm.optim.list_optimizers()]
    return sorted(models), sorted(optimizers)


@lru_cache(maxsize=1)
def timm_names() -> TimmNames:
    """Return the installed timm's names, from the cache when it has them."""
    version = metadata.version("timm")
    path = cache_dir() / f"timm-{version}-names.json"
    try:
        data = json.loads(path.read_text())
        return TimmNames(version, frozenset(data["models"]), frozenset(data["optimizers"]))
    except (OSError, ValueError, KeyError):
        pass
    models, optimizers = _list_from_timm()
    _write_atomically(path, json.dumps({"models": models, "optimizers": optimizers}))
    return TimmNames(version, frozenset(models), frozenset(optimizers))


def _write_atomically(path: Path, text: str) -> None:
    # A cache shared by concurrent processes must never be seen half-written.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs speed


def suggest(name: str, options: frozenset[str] | list[str]) -> str:
    """A ' (did you mean X?)' suffix naming the closest option, or ''."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_model_name(name: str) -> str:
    """Return name when timm can build it; raise ValueError naming the closest one otherwise."""
    models = timm_names().models
    if name.split(".", 1)[0] not in models:  # "resnet50.a1_in1k" names a weight tag
        raise ValueError(f"unknown timm model {name!r}{suggest(name, models)}")
    return name


def check_optimizer_name(name: str) -> str:
    """Return name when timm's create_optimizer_v2 knows it; raise ValueError otherwise."""
    optimizers = timm_names().optimizers
    if name.lower() not in optimizers:
        raise ValueError(f"unknown timm optimizer {name!r}{suggest(name, optimizers)}")
    return name
