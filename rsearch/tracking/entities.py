"""Turning nested settings and result dicts into what MLflow accepts: flat params, numeric metrics.

MLflow limits keys to 250 characters of letters, digits and `_-. :/`, param values to 6000
characters and tag values to 8000, and refuses non-numeric metrics. A value cut here is cut the
same way every time, so logging it again never trips MLflow's "changing param values" check.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
_CUT = "...[cut]"
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")


def clean_key(key: str) -> str:
    """A key MLflow accepts: other characters become `_`, the length is capped."""
    return _BAD_KEY_CHARS.sub("_", key)[:MAX_KEY]


def metric_key(name: str) -> str:
    """The MLflow key of a metric: MLflow refuses `@`, so a metric at a test resolution is
    logged as `val_top1_at_48` (and val_top1@mean as `val_top1_at_mean`)."""
    return clean_key(name.replace("@", "_at_"))


def text_value(value: Any) -> str:
    """A param or tag value as text: scalars as `str`, containers as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return str(value)


def cap(text: str, limit: int) -> str:
    """The text cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - len(_CUT)] + _CUT


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping with dotted keys; lists stay whole values.

    Args:
        tree: A nested mapping such as a recipe dump.
        prefix: Prepended to every key (used by the recursion).
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def params_of(tree: Mapping[str, Any]) -> dict[str, str]:
    """A nested mapping as MLflow params: dotted keys, text values within MLflow's limits."""
    return {
        clean_key(key): cap(text_value(value), MAX_PARAM_VALUE)
        for key, value in flatten(tree).items()
    }


def tags_of(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags within MLflow's limits; None values are left out."""
    return {
        clean_key(key): cap(text_value(value), MAX_TAG_VALUE)
        for key, value in tags.items()
        if value is not None
    }


def numeric(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries MLflow can store as metrics: ints and floats (NaN and inf included).

    Results carry strings, dicts and booleans too (trial ids, configs, done flags); those are
    not metrics and are skipped rather than refused by MLflow later.
    """
    return {
        metric_key(key): float(value)
        for key, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def json_safe(values: Mapping[str, float]) -> dict[str, float | str]:
    """Metrics for a JSON file: NaN and infinities as strings, which strict JSON lacks."""
    return {k: v if math.isfinite(v) else str(v) for k, v in values.items()}


def chunks(items: Iterable[Any], size: int) -> list[list[Any]]:
    """The items in lists of at most `size` (MLflow's per-request limits)."""
    out: list[list[Any]] = []
    for item in items:
        if not out or len(out[-1]) >= size:
            out.append([])
        out[-1].append(item)
    return out
